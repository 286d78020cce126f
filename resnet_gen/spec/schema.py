"""The JSON Schema of the spec language, exported from the pydantic models (its single definition)."""

from __future__ import annotations

from typing import Any

from .model import Spec

EXTENDS = {"type": "string", "description": "A catalog name or a relative path to the parent spec."}


def spec_schema() -> dict[str, Any]:
    """``Spec``'s JSON Schema plus ``extends``, which the loader resolves before validation."""
    data = Spec.model_json_schema()
    data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    data["title"] = "resnet-gen spec"
    data["properties"] = {"extends": EXTENDS, **data.get("properties", {})}
    return data
