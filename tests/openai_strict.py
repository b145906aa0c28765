"""OpenAI's rules for strict function calling, as a checker and as its decoding.

The API refuses (HTTP 400) a function with ``"strict": true`` whose parameters break
these rules, and a strict model then sends every property, null for those it leaves out.
``strict_errors`` lists the broken rules; ``as_strict_model_sends`` fills in the nulls.
"""

from __future__ import annotations

from typing import Any

# The keywords strict mode accepts (object, array, string and number constraints included).
SUPPORTED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "description",
        "title",
        "$defs",
        "$ref",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
SUPPORTED_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)


def strict_errors(schema: dict[str, Any]) -> list[str]:
    """Every rule ``schema`` (a function's parameters) breaks, with where; empty when accepted."""
    errors: list[str] = []
    if schema.get("type") != "object":
        errors.append("$: the parameters must be an object schema")
    _check(schema, "$", errors)
    return errors


def _check(node: Any, path: str, errors: list[str]) -> None:
    if not isinstance(node, dict):
        errors.append(f"{path}: a schema must be an object, got {node!r}")
        return
    for keyword in node:
        if keyword not in SUPPORTED_KEYWORDS:
            errors.append(f"{path}: keyword {keyword!r} is not supported")
    if "format" in node and node["format"] not in SUPPORTED_FORMATS:
        errors.append(f"{path}: format {node['format']!r} is not supported")
    if not any(k in node for k in ("type", "anyOf", "enum", "const", "$ref")):
        errors.append(f"{path}: no type")
    types = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
    if "object" in types:
        if node.get("additionalProperties") is not False:
            errors.append(f"{path}: additionalProperties must be false")
        properties = node.get("properties")
        if not isinstance(properties, dict):
            errors.append(f"{path}: an object must declare its properties")
        else:
            missing = sorted(set(properties) - set(node.get("required", [])))
            if missing:
                errors.append(f"{path}: every property must be required (optional ones nullable): {missing}")
            for name, prop in properties.items():
                _check(prop, f"{path}.{name}", errors)
    if "array" in types:
        if "items" not in node:
            errors.append(f"{path}: an array must declare its items")
        else:
            _check(node["items"], f"{path}[]", errors)
    for k, option in enumerate(node.get("anyOf", [])):
        _check(option, f"{path}|{k}", errors)
    for name, definition in node.get("$defs", {}).items():
        _check(definition, f"$defs.{name}", errors)


def as_strict_model_sends(arguments: Any, schema: dict[str, Any]) -> Any:
    """``arguments`` as a strict model emits them: every omitted property present as null."""
    kind = "object" if isinstance(arguments, dict) else "array" if isinstance(arguments, list) else None
    for option in schema.get("anyOf", []):
        if kind is not None and option.get("type") == kind:
            return as_strict_model_sends(arguments, option)
    if kind == "object" and isinstance(schema.get("properties"), dict):
        filled = {
            name: as_strict_model_sends(arguments.get(name), prop)
            for name, prop in schema["properties"].items()
        }
        return filled | {k: v for k, v in arguments.items() if k not in schema["properties"]}
    if kind == "array":
        return [as_strict_model_sends(item, schema.get("items", {})) for item in arguments]
    return arguments
