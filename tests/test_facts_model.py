"""The key facts' stored form: what the comparison, the API and the exports read back."""

from __future__ import annotations

from worker.facts import FACT_FIELDS, Fact, FactSource, dump_facts, load_facts


def test_facts_round_trip_in_field_order_with_unknowns_filled() -> None:
    stored = dump_facts(
        [
            Fact("stage", "Series B", (FactSource(2, "Acme raises", "https://news.example/acme"),), True),
            Fact("recommendation", "Take a meeting"),
        ]
    )
    facts = load_facts(stored)
    assert facts is not None
    assert [fact.key for fact in facts] == [key for key, _ in FACT_FIELDS]
    by_key = {fact.key: fact for fact in facts}
    assert by_key["stage"].value == "Series B"
    assert by_key["stage"].sources == (FactSource(2, "Acme raises", "https://news.example/acme"),)
    assert by_key["stage"].found is True
    assert by_key["recommendation"].label == "Recommendation"
    assert by_key["head_count"].value is None and by_key["head_count"].sources == ()


def test_a_report_without_facts_has_none_and_unknown_keys_are_dropped() -> None:
    assert load_facts(None) is None
    assert load_facts("") is None
    facts = load_facts('[{"key": "mood", "value": "good", "sources": []}]')
    assert facts is not None and all(fact.value is None for fact in facts)
