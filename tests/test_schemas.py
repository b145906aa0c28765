"""The strict form of argument schemas: what it changes, what it refuses."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from openai_strict import strict_errors
from pydantic import BaseModel, ConfigDict, Field

from metric_tracker_rl.schemas import SchemaError, model_schema, strict_schema


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    weight: float = Field(default=1.5, ge=0, description="How much it counts")


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Inner] = Field(description="The items")
    label: str | None = Field(default=None, description="A label.")
    limit: int = 5


def test_optional_properties_become_required_and_nullable_with_the_default_in_words() -> None:
    lenient = model_schema(Outer)
    assert lenient["required"] == ["items"] and "$defs" not in lenient
    strict = strict_schema(lenient)
    assert strict["required"] == ["items", "label", "limit"]
    assert strict["additionalProperties"] is False
    assert strict["properties"]["label"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "A label. Optional; may be null.",
    }
    assert strict["properties"]["limit"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "description": "Optional; null for the default (5).",
    }
    inner = strict["properties"]["items"]["items"]
    assert inner["required"] == ["name", "weight"] and inner["additionalProperties"] is False
    assert inner["properties"]["weight"]["anyOf"] == [{"minimum": 0, "type": "number"}, {"type": "null"}]
    assert (
        inner["properties"]["weight"]["description"]
        == "How much it counts. Optional; null for the default (1.5)."
    )
    assert strict_errors(strict) == []
    jsonschema.Draft202012Validator.check_schema(strict)


def test_the_strict_form_admits_what_a_strict_model_sends() -> None:
    strict = strict_schema(model_schema(Outer))
    jsonschema.validate({"items": [{"name": "a", "weight": None}], "label": None, "limit": None}, strict)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"items": [], "label": None}, strict)  # limit missing
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"items": [], "label": None, "limit": None, "extra": 1}, strict)


def test_the_lenient_form_breaks_the_strict_rules_the_checker_knows() -> None:
    """The three faults of the first schemas: optional properties outside ``required``,
    ``default`` keywords, free-form object items."""
    errors = strict_errors(model_schema(Outer))
    assert any("every property must be required" in e for e in errors)
    assert any("'default'" in e for e in errors)
    free_form: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"rows": {"type": "array", "items": {"type": "object"}}},
        "required": ["rows"],
    }
    assert any("declare its properties" in e for e in strict_errors(free_form))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"rows": {"type": "array", "items": {"type": "object"}}}},
        {"type": "object", "properties": {"x": {"type": "object", "additionalProperties": True}}},
        {"type": "object", "properties": {"x": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
        {"type": "array", "items": {"type": "string"}},
    ],
    ids=["free-form-items", "free-form-property", "oneOf", "not-an-object"],
)
def test_schemas_without_a_strict_form_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        strict_schema(schema)
