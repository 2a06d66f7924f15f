"""The typed thresholds follow the catalogue they are derived from."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from portal.catalogue import PYTHON_TYPES, Thresholds, load_catalogue


def test_every_catalogue_threshold_is_a_typed_field_and_nothing_else() -> None:
    fields = {f.name for f in dataclasses.fields(Thresholds)}
    assert fields == set(load_catalogue().threshold_defaults())


@pytest.mark.parametrize("name", sorted(load_catalogue().limits()))
def test_each_field_has_the_type_its_limit_names(name: str) -> None:
    hints = typing.get_type_hints(Thresholds)
    expected = PYTHON_TYPES[load_catalogue().limits()[name].type]
    assert (typing.get_origin(hints[name]) or hints[name]) is expected


def test_defaults_and_overrides_arrive_typed() -> None:
    applied = load_catalogue().thresholds({"lockout_seconds": 60, "same_site": ["Strict"]})
    assert applied.lockout_seconds == 60.0 and type(applied.lockout_seconds) is float
    assert applied.same_site == ("Strict",)
    assert type(applied.max_failures) is int and applied.composition_rules_allowed is False


def test_every_source_cites_a_standard_with_a_link() -> None:
    catalogue = load_catalogue()
    for control in catalogue.controls:
        for source in control.sources:
            assert catalogue.standard_of(source).url.startswith("https://"), source


def test_a_source_citing_an_unknown_standard_is_refused() -> None:
    from pydantic import ValidationError

    from portal.catalogue import Catalogue

    data = load_catalogue().model_dump()
    data["controls"][0]["sources"] = ["ISO 27001 A.9"]
    with pytest.raises(ValidationError, match="'ISO 27001 A.9' cites none of A4, A5"):
        Catalogue.model_validate(data)


def test_the_header_policy_file_agrees_with_the_catalogue_defaults() -> None:
    """HSTS falls back to the header policy file's numbers: they are the catalogue's."""
    from scanners.header_policy import load_header_policy

    hsts = load_catalogue().get("HDR_HSTS").threshold
    policy = load_header_policy()
    assert policy.hsts_min_max_age == hsts["min_max_age_seconds"]
    assert policy.hsts_recommended_max_age == hsts["recommended_max_age_seconds"]
