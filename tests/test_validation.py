"""Reading a batch of names from the dashboard's text box."""

from __future__ import annotations

import pytest

from webapp.validation import ValidationError, normalise_name, parse_batch, upload_filename, validate_startup


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
    with pytest.raises(ValidationError, match="Line 2 is longer than 200"):
        parse_batch("Acme\n" + "x" * 201 + "\nZeta")


def test_an_empty_box_asks_for_a_name() -> None:
    with pytest.raises(ValidationError, match="at least one"):
        parse_batch(" \n\n")


@pytest.mark.parametrize("variant", ["Tesla", "Ｔｅｓｌａ", "T\u200besla", "\ufeffTe\u200c\u200dsla\u2060", " 𝐓esla "])
def test_names_are_normalised_to_the_letters_they_show(variant: str) -> None:
    assert normalise_name(variant) == "Tesla"
    assert validate_startup(variant) == "Tesla"


def test_a_batch_counts_the_variants_of_one_name_as_repeats() -> None:
    batch = parse_batch("Tesla\nＴｅｓｌａ\nT\u200besla")
    assert batch.names == ["Tesla"] and batch.duplicates == 2


@pytest.mark.parametrize(
    "control",
    [
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\u200e",
        "\u200f",
        "\u061c",
    ],
)
def test_direction_controls_are_refused(control: str) -> None:
    with pytest.raises(ValidationError, match="invisible direction control"):
        validate_startup(f"Acme{control}Labs")
    with pytest.raises(ValidationError, match="Line 2 contains an invisible direction control"):
        parse_batch(f"Zeta\nAcme{control}Labs")


def test_a_word_mixing_latin_and_cyrillic_letters_is_refused_and_named() -> None:
    with pytest.raises(ValidationError, match="mixes Latin and Cyrillic letters in one word \\(“Теsla”\\)"):
        validate_startup("Теsla Motors")  # a Cyrillic Т
    with pytest.raises(ValidationError, match="Line 1 mixes Latin and Greek letters"):
        parse_batch("Αcme")  # a Greek Α
    with pytest.raises(ValidationError, match="Latin and Cyrillic"):
        validate_startup("Яндекс-Market")  # a word is what lies between spaces
    with pytest.raises(ValidationError, match="Latin and Greek"):
        validate_startup("µTorrent")  # NFKC makes the micro sign a Greek mu: the price of the rule


@pytest.mark.parametrize("name", ["Тесла", "Яндекс Market", "株式会社メルカリ", "Ünïcødé GmbH", "Ελλάδα AE"])
def test_one_alphabet_per_word_is_fine(name: str) -> None:
    assert validate_startup(name) == name


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("deck.pdf", "deck.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("\u2067a\u200bb\u2069.pdf", "ab.pdf"),
        ("\u202e", "document.pdf"),
        (None, "document.pdf"),
    ],
)
def test_upload_filenames_lose_direction_controls_and_invisible_characters(raw: str | None, shown: str) -> None:
    assert upload_filename(raw) == shown
