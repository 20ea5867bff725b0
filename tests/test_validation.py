"""Reading a batch of names from the dashboard's text box."""

from __future__ import annotations

import pytest

from webapp.validation import ValidationError, parse_batch


def test_blank_lines_and_repeats_are_dropped_and_counted() -> None:
    batch = parse_batch("Acme\n\n  Northwind  \nacme\n   \nACME\nZeta\n")
    assert batch.names == ["Acme", "Northwind", "Zeta"]
    assert (batch.blank_lines, batch.duplicates) == (2, 2)
    assert batch.note == "Dropped 2 repeated names and 2 blank lines."


def test_a_clean_batch_has_no_note() -> None:
    assert parse_batch("Acme\r\nZeta").note == ""


def test_fifty_names_are_accepted_and_fifty_one_are_not() -> None:
    assert len(parse_batch("\n".join(f"S{i}" for i in range(50))).names) == 50
    with pytest.raises(ValidationError, match="51 names is more than the 50"):
        parse_batch("\n".join(f"S{i}" for i in range(51)))


def test_one_bad_line_rejects_the_batch_and_names_the_line() -> None:
    with pytest.raises(ValidationError, match="line 2 is longer than 200"):
        parse_batch("Acme\n" + "x" * 201 + "\nZeta")


def test_an_empty_box_asks_for_a_name() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        parse_batch(" \n\n")
