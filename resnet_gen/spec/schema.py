"""The JSON Schema of the spec language, exported from the pydantic models (its single definition).

``spec_schema()`` is the language itself: what a resolved spec holds, as the models validate it
(the README's field reference is rendered from it). ``file_schema()`` is what ``resnet-gen schema``
writes and every spec's first line points editors at: one spec *file* as the loader reads it,
before ``extends`` and the shorthands are resolved. It is ``spec_schema()`` with three rules applied,
each read off the loader or the models rather than listed by hand:

- Keys a parent can supply are optional. ``extends`` merges mappings key by key, so neither the top
  level nor any mapping below it requires a key (a file's ``name`` is its file name; without
  ``extends``, the rest of the top level's required keys still are). Lists replace their parent's,
  so a stage keeps its required keys, and ``reference`` is not inherited, so it keeps its own.
- A model whose ``mode="before"`` validator takes a name for ``{type: name}`` accepts that name
  wherever the model is used (``norm: batch``); the names are the ones the model accepts.
- A ``type`` accepts the model's ``TYPE_ALIASES`` too (``shortcut: {type: D}``).

Everything else (unknown keys, bounds, enums) stays exactly as the models say.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from ..unet.spec import UNetSpec
from .model import Spec

EXTENDS = {"type": "string", "description": "A catalog name or a relative path to the parent spec."}
DRAFT = "https://json-schema.org/draft/2020-12/schema"

# The loader fills these from the file itself (``name`` is the file's name without .yaml).
FILLED_FROM_FILE = frozenset({"name"})
# Top-level keys a child never inherits (the loader drops its parent's), so what they require stays required.
NOT_INHERITED = frozenset({"reference"})

Schema = dict[str, Any]


def spec_schema() -> Schema:
    """``Spec``'s JSON Schema plus ``extends``, which the loader resolves before validation, and
    the keys of the U-Net layout (``layout: unet`` and its ``unet`` section, see :func:`_with_unet`)."""
    data = Spec.model_json_schema()
    data["$schema"] = DRAFT
    data["title"] = "resnet-gen spec"
    data["properties"] = {"extends": EXTENDS, **data.get("properties", {})}
    return _with_unet(data)


def _with_unet(data: Schema) -> Schema:
    """A spec file is a classifier, or with ``layout: unet`` a diffusion U-Net (``UNetSpec``):
    the U-Net's own keys join the top level, and a file that says ``layout`` may hold only the
    U-Net's keys (a U-Net's child that does not repeat ``layout`` is checked by the loader)."""
    from ..unet.spec import UNetSpec

    unet = UNetSpec.model_json_schema()
    for name, node in unet.get("$defs", {}).items():
        data["$defs"].setdefault(name, node)
    extra = [key for key in unet["properties"] if key not in data["properties"]]
    data["properties"].update({key: unet["properties"][key] for key in extra})
    data["allOf"] = [
        {
            "if": {"required": ["layout"]},
            "then": {"propertyNames": {"enum": ["extends", *unet["properties"]]}},
        }
    ]
    return data


def file_schema() -> Schema:
    """The schema of one spec file as the loader accepts it (see the module docstring)."""
    data = spec_schema()
    defs: dict[str, Schema] = data["$defs"]
    models = {name: model for name, model in {**_models(UNetSpec), **_models(Spec)}.items() if name in defs}
    for name, model in models.items():
        _add_type_aliases(defs[name], model)
    for name in _inheritable(data, defs):
        defs[name].pop("required", None)
    required = [key for key in data.pop("required", ()) if key not in FILLED_FROM_FILE]
    if required:  # the classifier's keys; a U-Net (layout: unet) requires its own
        data["if"] = {"anyOf": [{"required": ["extends"]}, {"required": ["layout"]}]}
        data["else"] = {"required": required}
    names = {name: found for name, model in models.items() if (found := shorthand_names(model, defs[name]))}
    rewritten: Schema = _accept_names(data, names)
    return rewritten


def shorthand_names(model: type[BaseModel], node: Schema) -> list[str]:
    """The names of ``model``'s ``type`` that the model accepts on their own, in the schema's order."""
    kind = node.get("properties", {}).get("type", {})
    return [value for value in kind.get("enum", ()) if isinstance(value, str) and _accepts(model, value)]


def _accepts(model: type[BaseModel], value: str) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``root``'s fields, by class name (the names pydantic gives ``$defs``)."""
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in found:
                found[annotation.__name__] = annotation
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for argument in typing.get_args(annotation):
            visit(argument)

    visit(root)
    return found


def _add_type_aliases(node: Schema, model: type[BaseModel]) -> None:
    aliases: dict[str, str] = getattr(model, "TYPE_ALIASES", {})
    kind = node.get("properties", {}).get("type")
    if aliases and kind is not None:
        kind["enum"] = [*kind["enum"], *(alias for alias in aliases if alias not in kind["enum"])]


def _inheritable(root: Schema, defs: dict[str, Schema]) -> set[str]:
    """The models a parent's mapping is merged into: reached from the top level through mappings
    only (a list replaces its parent's, so what lies inside one is complete)."""
    seen: set[str] = set()
    stack = [node for key, node in root["properties"].items() if key not in NOT_INHERITED]
    while stack:
        for name in _mapping_refs(stack.pop()):
            if name not in seen:
                seen.add(name)
                stack.extend(defs[name].get("properties", {}).values())
    return seen


def _mapping_refs(node: Schema) -> Iterator[str]:
    """The models a property holds as a mapping: its ``$ref``, or one among its ``anyOf``."""
    for candidate in (node, *node.get("anyOf", ())):
        if "$ref" in candidate:
            yield _ref_name(candidate["$ref"])


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _accept_names(node: Any, names: dict[str, list[str]]) -> Any:
    """``node`` with every reference to a model in ``names`` widened to ``anyOf: [model, name]``
    (spliced into an ``anyOf`` the reference already sits in)."""
    if isinstance(node, list):
        return [_accept_names(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _accept_names(value, names) for key, value in node.items()}
    target = _ref_name(out["$ref"]) if isinstance(out.get("$ref"), str) else None
    if target in names:
        out["anyOf"] = [{"$ref": out.pop("$ref")}, {"enum": names[target]}]
    if "anyOf" in out:
        out["anyOf"] = [item for member in out["anyOf"] for item in _spliced(member)]
    return out


def _spliced(member: Schema) -> list[Schema]:
    return list(member["anyOf"]) if set(member) == {"anyOf"} else [member]
