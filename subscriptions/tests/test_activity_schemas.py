"""Every activity type has a valid JSON Schema, and its sample payload satisfies it."""

import copy

import pytest
from jsonschema import Draft202012Validator

from subscriptions.activity_schemas import SCHEMAS, data_validator
from subscriptions.activity_types import ACTIVITY_TYPES

CODES = sorted(ACTIVITY_TYPES)


def test_every_type_of_the_catalogue_has_a_schema_and_no_other():
    assert len(CODES) == 25
    assert sorted(SCHEMAS) == CODES


@pytest.mark.parametrize("code", CODES)
def test_schema_is_a_valid_draft_2020_12_schema(code):
    schema = ACTIVITY_TYPES[code].schema
    Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object"
    assert schema["required"], "a type without required properties tells receivers nothing"


@pytest.mark.parametrize("code", CODES)
def test_sample_satisfies_its_schema_and_declares_every_property(code):
    sample = ACTIVITY_TYPES[code].sample
    errors = [e.message for e in data_validator(code, closed=True).iter_errors(sample)]
    assert errors == []


@pytest.mark.parametrize("code", CODES)
def test_sample_missing_a_required_property_is_refused(code):
    """Bad input: the sample with its first required property removed."""
    schema = ACTIVITY_TYPES[code].schema
    sample = copy.deepcopy(ACTIVITY_TYPES[code].sample)
    missing = schema["required"][0]
    del sample[missing]
    messages = [e.message for e in data_validator(code).iter_errors(sample)]
    assert messages == [f"'{missing}' is a required property"]


def test_wrong_types_and_bad_dates_are_refused():
    """Bad input: a string plant count, a negative weight, an impossible date, an unknown enum value."""
    bad = dict(ACTIVITY_TYPES["batch.created"].sample, plant_count="240", started_on="2026-02-30",
               source="cuttings from a friend")
    messages = sorted(e.message for e in data_validator("batch.created").iter_errors(bad))
    assert messages == [
        "'2026-02-30' is not a 'date'",
        "'240' is not of type 'integer'",
        "'cuttings from a friend' is not one of ['clones', 'seeds', 'mother plants']",
    ]
    negative = dict(ACTIVITY_TYPES["lot.created"].sample, weight_grams=-1)
    assert [e.message for e in data_validator("lot.created").iter_errors(negative)] == [
        "-1 is less than the minimum of 0"
    ]


def test_published_schema_is_open_but_closed_validation_refuses_undeclared_properties():
    """Bad input: a property the schema does not declare (allowed for receivers, refused for our own code)."""
    extended = dict(ACTIVITY_TYPES["lot.created"].sample, colour="green")
    assert list(data_validator("lot.created").iter_errors(extended)) == []
    messages = [e.message for e in data_validator("lot.created", closed=True).iter_errors(extended)]
    assert messages == ["Additional properties are not allowed ('colour' was unexpected)"]
