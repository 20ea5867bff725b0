"""Integration tests run real processes; their fixtures are in tests/conftest.py, shared with the
browser tests."""
