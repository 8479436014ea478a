"""The pure rules of a customer's fields: accepted and rejected values, in milliseconds, without a database.
Every rejection's message names the rule and never repeats the rejected value."""

from __future__ import annotations

from datetime import date
from typing import Any

import email_validator
import pytest

from obhut.customers import rules
from obhut.customers.rules import Card, InvalidValueError
from obhut.kit.errors import ValidationFailedError

TODAY = date(2026, 11, 23)


def _rejection(function: Any, value: Any, *args: Any) -> str:
    with pytest.raises(InvalidValueError) as error:
        function(value, *args)
    message = str(error.value)
    assert message
    if isinstance(value, str) and value.strip():
        assert value.strip() not in message
    return message


class TestText:
    def test_is_trimmed_and_composed(self) -> None:
        assert rules.clean_text("  Jane ", 200) == "Jane"
        assert rules.clean_text("Rene\u0301", 200) == "Ren\u00e9"  # NFC: one code point, not e + accent

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (5, "must be text"),
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            ("Jane\x00Doe", "control characters"),
            ("Janetextlong" * 20, "at most 200 characters"),
        ],
    )
    def test_rejects(self, value: object, reason: str) -> None:
        assert reason in _rejection(rules.clean_text, value, 200)

    def test_keeps_line_breaks_in_long_text(self) -> None:
        assert rules.clean_text("first line\nsecond line\ttab", 10_000) == "first line\nsecond line\ttab"


class TestEmail:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("Jane.Musterfrau@EXAMPLE.COM", "Jane.Musterfrau@example.com"),
            ("jane+tag@sub.example.com", "jane+tag@sub.example.com"),
            (" jane@example.com ", "jane@example.com"),
        ],
    )
    def test_fast_path_lower_cases_only_the_domain(self, value: str, expected: str) -> None:
        assert rules.normalise_email(value) == expected

    @pytest.mark.parametrize(
        "value", ["Jane.Musterfrau@EXAMPLE.COM", "o'brien@example.com", "a.b-c_d@mail.example.org", "x@123.example.com"]
    )
    def test_fast_path_agrees_with_the_library(self, value: str) -> None:
        library = email_validator.validate_email(value, check_deliverability=False).normalized
        assert rules.normalise_email(value) == library

    def test_international_address_takes_the_library_path(self) -> None:
        assert rules._EMAIL_FAST.fullmatch("jörg@exämple.com") is None
        assert rules.normalise_email("jörg@exämple.com") == "jörg@exämple.com"
        assert rules.normalise_email("Jörg@EXÄMPLE.com") == "Jörg@exämple.com"

    @pytest.mark.parametrize(
        "value",
        [
            "jane@@example.com",
            "jane.example.com",
            "jane@example",
            "jane..doe@example.com",
            "jane@-example.com",
            '"jane doe"@example.com',
            "jane@example.com.",
        ],
    )
    def test_rejects(self, value: str) -> None:
        assert _rejection(rules.normalise_email, value) == "is not a valid email address"

    def test_index_form_ignores_case(self) -> None:
        assert rules.email_index_form("Jane.Musterfrau@example.com") == rules.email_index_form(
            rules.normalise_email("JANE.MUSTERFRAU@EXAMPLE.COM")
        )


class TestPhone:
    @pytest.mark.parametrize(
        ("value", "region", "expected"),
        [
            ("+49 30 1234567", "DE", "+49301234567"),
            ("030 1234567", "DE", "+49301234567"),
            ("(030) 123-4567", "DE", "+49301234567"),
            ("+44 20 7946 0958", "DE", "+442079460958"),
            ("202 555 0143", "US", "+12025550143"),
        ],
    )
    def test_normalises_to_e164(self, value: str, region: str, expected: str) -> None:
        assert rules.normalise_phone(value, region) == expected

    def test_national_form_depends_on_the_region(self) -> None:
        assert "not a valid phone number" in _rejection(rules.normalise_phone, "030 1234567", "US")

    @pytest.mark.parametrize(
        ("value", "reason"),
        [("12", "not a valid phone number for its country"), ("phone me", "not a phone number; give it as")],
    )
    def test_rejects(self, value: str, reason: str) -> None:
        assert reason in _rejection(rules.normalise_phone, value, "DE")


class TestIban:
    @pytest.mark.parametrize(
        "value", ["DE89 3704 0044 0532 0130 00", "de89370400440532013000", " DE89370400440532013000 "]
    )
    def test_normalises_to_compact_form(self, value: str) -> None:
        assert rules.normalise_iban(value) == "DE89370400440532013000"

    def test_formats_in_groups_of_four(self) -> None:
        assert rules.format_iban("DE89370400440532013000") == "DE89 3704 0044 0532 0130 00"

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("DE00 3704 0044 0532 0130 00", "check digits do not match"),
            ("DE89 3704 0044 0532 0130 0", "wrong length for its country"),
            ("QQ89 3704 0044 0532 0130 00", "unknown country code"),
            ("not an iban", "is not a valid IBAN"),
        ],
    )
    def test_rejects_with_the_reason(self, value: str, reason: str) -> None:
        message = _rejection(rules.normalise_iban, value)
        assert reason in message
        assert value.replace(" ", "") not in message.replace(" ", "")


class TestBirthDate:
    def test_accepts_iso_dates_and_date_objects(self) -> None:
        assert rules.normalise_birth_date("1985-04-12", TODAY) == "1985-04-12"
        assert rules.normalise_birth_date(date(1985, 4, 12), TODAY) == "1985-04-12"

    def test_today_and_the_oldest_plausible_year_are_accepted(self) -> None:
        assert rules.normalise_birth_date(TODAY.isoformat(), TODAY) == "2026-11-23"
        assert rules.normalise_birth_date(date(TODAY.year - rules.MAX_AGE_YEARS, 1, 1), TODAY) == "1896-01-01"

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("2026-11-24", "must not be in the future"),
            ("1895-12-31", "is not plausible (more than 130 years ago)"),
            ("12.04.1985", "must be a date as YYYY-MM-DD"),
            ("1985-13-45", "must be a date as YYYY-MM-DD"),
        ],
    )
    def test_rejects(self, value: str, reason: str) -> None:
        assert _rejection(rules.normalise_birth_date, value, TODAY) == reason


class TestCard:
    @pytest.mark.parametrize(
        ("value", "brand"),
        [
            ("4111 1111 1111 1111", "visa"),
            ("4111-1111-1111-1111", "visa"),
            ("5555 5555 5555 4444", "mastercard"),
            ("2223 0000 4840 0011", "mastercard"),  # the 2-series range 2221-2720
            ("3782 822463 10005", "amex"),
            ("6011 1111 1111 1117", "discover"),
        ],
    )
    def test_detects_the_brand(self, value: str, brand: str) -> None:
        card = rules.parse_card(value)
        digits = value.replace(" ", "").replace("-", "")
        assert (card.number, card.brand, card.last4) == (digits, brand, digits[-4:])

    @pytest.mark.parametrize(
        ("prefix", "brand"),
        [
            ("2220999999999999", "other"),
            ("2221000000000000", "mastercard"),
            ("2720990000000000", "mastercard"),
            ("2721000000000000", "other"),
            ("3400000000000000", "amex"),
            ("3700000000000000", "amex"),
        ],
    )
    def test_brand_range_edges(self, prefix: str, brand: str) -> None:
        assert rules.card_brand(prefix) == brand

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("4111 1111 1111 1112", "check digit does not match"),
            ("41111", "12 to 19 digits"),
            ("4111 1111 1111 111x", "12 to 19 digits"),
            ("4111 1111 1111 1111 1111", "12 to 19 digits"),
        ],
    )
    def test_rejects(self, value: str, reason: str) -> None:
        message = _rejection(rules.parse_card, value)
        assert reason in message
        assert value.replace(" ", "") not in message

    def test_repr_hides_the_number(self) -> None:
        card = rules.parse_card("4111 1111 1111 1111")
        assert repr(card) == "Card(brand='visa', last4=****)"
        assert "1111" not in repr(card)
        assert isinstance(card, Card)


class TestAddress:
    def test_normalises_parts_and_upper_cases_the_country(self) -> None:
        raw = {"line1": " Beispielweg 1 ", "line2": "", "postal_code": "10115", "city": "Berlin", "country": "de"}
        assert rules.normalise_address(raw) == {
            "line1": "Beispielweg 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        }

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("Beispielweg 1, Berlin", "must be an object"),
            ({"line1": "Beispielweg 1", "city": "Berlin", "country": "DE"}, "needs 'postal_code'"),
            ({"line1": "Weg 1", "postal_code": "1", "city": "Berlin", "country": "XX"}, "ISO 3166 two-letter code"),
            ({"line1": "Weg 1", "postal_code": "1", "city": "Berlin", "country": "DE", "floor": "3"}, "unknown parts"),
        ],
    )
    def test_rejects(self, value: object, reason: str) -> None:
        assert reason in _rejection(rules.normalise_address, value)


class TestNormalise:
    def test_normalises_every_field(self) -> None:
        values = rules.normalise(
            {
                "family_name": "Musterfrau",
                "email": "Jane@EXAMPLE.com",
                "phone": "030 1234567",
                "iban": "DE89 3704 0044 0532 0130 00",
                "card": "4111 1111 1111 1111",
                "birth_date": "1985-04-12",
            },
            "DE",
            TODAY,
        )
        card = values.pop("card")
        assert values == {
            "family_name": "Musterfrau",
            "email": "Jane@example.com",
            "phone": "+49301234567",
            "iban": "DE89370400440532013000",
            "birth_date": "1985-04-12",
        }
        assert (card.brand, card.last4) == ("visa", "1111")

    def test_collects_every_error_at_once(self) -> None:
        bad = {
            "email": "jane@@example.com",
            "phone": "12",
            "iban": "DE00 3704 0044 0532 0130 00",
            "birth_date": "2999-01-01",
            "card": "4111 1111 1111 1112",
            "shoe_size": "42",
        }
        with pytest.raises(ValidationFailedError) as error:
            rules.normalise({"family_name": "Musterfrau", **bad}, "DE", TODAY)
        by_field = {e.field: e for e in error.value.errors}
        assert set(by_field) == {*bad.keys() - {"card"}, "card_number"}  # reported by the name clients send
        assert by_field["shoe_size"].code == "unknown-field"
        assert by_field["birth_date"].message == "birth_date must not be in the future"
        assert str(error.value) == "6 field(s) are invalid: birth_date, card_number, email, iban, phone, shoe_size"
        everything = str(error.value) + repr(error.value.errors)
        assert all(value not in everything for value in bad.values() if len(value) > 2)

    def test_a_new_customer_needs_something_to_find_them_by(self) -> None:
        with pytest.raises(ValidationFailedError) as error:
            rules.normalise({"given_name": "Jane"}, "DE", TODAY)
        assert [(e.field, e.code, e.message) for e in error.value.errors] == [
            ("family_name", "required", rules.IDENTIFYING_MESSAGE)
        ]

    @pytest.mark.parametrize("identifying", rules.IDENTIFYING)
    def test_any_identifying_field_suffices(self, identifying: str) -> None:
        value = "jane@example.com" if identifying == "email" else "K-0001"
        assert rules.normalise({identifying: value}, "DE", TODAY) == {identifying: value}

    def test_an_update_may_omit_identifying_fields(self) -> None:
        assert rules.normalise({"given_name": "Jane"}, "DE", TODAY, partial=True) == {"given_name": "Jane"}

    def test_null_and_empty_clear_a_field(self) -> None:
        values = rules.normalise({"email": "jane@example.com", "notes": None, "phone": ""}, "DE", TODAY)
        assert values == {"email": "jane@example.com", "notes": None, "phone": None}

    def test_the_region_applies_to_national_phone_numbers(self) -> None:
        assert rules.normalise({"phone": "202 555 0143"}, "US", TODAY, partial=True) == {"phone": "+12025550143"}


class TestNames:
    @pytest.mark.parametrize(
        ("typed", "stored"),
        [
            ("Müller", "MUELLER"),
            ("Straße", "strasse"),
            ("Séverine  Dupont", "severine dupont"),
            ("Müller-Lüdenscheidt", "Mueller Luedenscheidt"),
            ("O'Brien", "OBrien"),
            ("u\u0308ber", "über"),  # decomposed umlaut, as some keyboards send it
        ],
    )
    def test_spellings_of_one_name_fold_alike(self, typed: str, stored: str) -> None:
        assert rules.name_index_form(typed) == rules.name_index_form(stored)

    def test_different_names_stay_apart(self) -> None:
        assert rules.name_index_form("Muller") != rules.name_index_form("Müller")  # ü is ue, not u
        assert rules.name_index_form("Anna") != rules.name_index_form("Anne")

    def test_each_split_of_the_words_is_one_reading_the_whole_term_first(self) -> None:
        readings = rules.name_searches(" Anna  von Beispiel ")
        assert [(r.given, r.family) for r in readings] == [
            ((), "anna von beispiel"),
            (("anna",), "von beispiel"),
            (("anna", "von"), "beispiel"),
        ]

    def test_a_reading_matches_on_the_family_name_and_the_start_of_the_given_names(self) -> None:
        reading = rules.NameSearch(("anna",), "mueller")
        assert reading.matches("Anna Maria", "Müller")
        assert not reading.matches("Maria Anna", "Müller")
        assert not reading.matches("Anna", "Beispiel")
        assert not reading.matches("Anna", None)
        assert rules.NameSearch((), "mueller").matches(None, "Mueller")

    @pytest.mark.parametrize("term", ["", "  ", "a b c d e f g", 42])
    def test_an_empty_long_or_non_text_term_is_refused(self, term: object) -> None:
        with pytest.raises(rules.InvalidValueError):
            rules.name_searches(term)
