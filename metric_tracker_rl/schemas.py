"""JSON-schema forms of the argument models: self-contained, and strict for tool calling.

``self_contained`` turns a pydantic model schema into one without ``$defs``/``$ref`` or
titles. ``strict_schema`` rewrites such a schema into the subset OpenAI's strict function
calling accepts (and MCP hosts pass on to it): every object lists all its properties in
``required`` and forbids others, an optional property becomes nullable (null means "use
the default", which the description states), there is no ``default`` keyword, and every
object declares its properties. The result is still JSON Schema 2020-12.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


class SchemaError(ValueError):
    """A schema that has no strict form (a free-form object, for instance)."""


def self_contained(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``$ref`` replaced by its definition and no ``title`` keys."""
    schema = dict(schema)
    definitions = schema.pop("$defs", {})
    return _inline(schema, definitions)


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = definitions[node["$ref"].split("/")[-1]]
            merged = {**_inline(target, definitions), **{k: v for k, v in node.items() if k != "$ref"}}
            merged.pop("title", None)
            return merged
        return {k: _inline(v, definitions) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_inline(v, definitions) for v in node]
    return node


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, self-contained, always with ``properties`` and ``required``."""
    schema = self_contained(model.model_json_schema())
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    return schema


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The strict tool-calling form of a self-contained object schema (see the module doc)."""
    if schema.get("type") != "object":
        raise SchemaError("a tool's input schema must be an object")
    return _strict(schema)


def _strict(node: dict[str, Any]) -> dict[str, Any]:
    node = {k: v for k, v in node.items() if k != "default"}
    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties", {})
        if not properties and node.get("additionalProperties", True) is not False:
            raise SchemaError(f"free-form object (declare its properties): {json.dumps(node)[:200]}")
        required = set(node.get("required", []))
        node["properties"] = {
            name: _strict(prop) if name in required else _nullable(prop) for name, prop in properties.items()
        }
        node["required"] = list(properties)
        node["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        node["items"] = _strict(node["items"])
    if "anyOf" in node:
        node["anyOf"] = [_strict(option) for option in node["anyOf"]]
    for keyword in ("allOf", "oneOf", "not", "patternProperties", "prefixItems"):
        if keyword in node:
            raise SchemaError(f"{keyword!r} has no strict form")
    return node


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    """An optional property: its strict form, also admitting null, with the default in words."""
    default = prop.get("default")
    description = prop.get("description", "").rstrip(".")
    note = (
        "Optional; may be null."
        if default is None
        else f"Optional; null for the default ({json.dumps(default)})."
    )
    inner = _strict({k: v for k, v in prop.items() if k != "description"})
    options = inner["anyOf"] if list(inner) == ["anyOf"] else [inner]
    if {"type": "null"} not in options:
        options = [*options, {"type": "null"}]
    return {"anyOf": options, "description": f"{description}. {note}" if description else note}
