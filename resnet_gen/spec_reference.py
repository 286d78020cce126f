"""The spec language's field reference, as Markdown, generated from its JSON Schema.

Every key a spec may hold, with its type and allowed values (bounds included), its default and
its description, all read from ``spec_schema()``, which the pydantic models export: a field added
to the models shows up here without anyone listing it. One table per section (the top level,
``stem``, ``block``, ``block.attention``, ``stages[]``, ...), keys written as full dotted paths.
The README carries it between ``<!-- fields:start -->`` and ``<!-- fields:end -->``;
``resnet-gen schema --markdown --update README.md`` (``make readme``) regenerates it. Pure Python: no torch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import marked_section
from .spec.schema import spec_schema

START = "<!-- fields:start -->"
END = "<!-- fields:end -->"

REQUIRED = "required"
NO_DEFAULT = "—"
SECTION_DEFAULTS = "the defaults below"

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class FieldRow:
    """One key: its dotted path (``stages[].width``), type and allowed values, default, description."""

    path: str
    kind: str
    default: str
    description: str


@dataclass(frozen=True)
class Section:
    """The keys of one mapping of the language, under the path they sit at ("" is the top level)."""

    path: str
    intro: str
    rows: tuple[FieldRow, ...]


def reference_sections(schema: Schema | None = None) -> list[Section]:
    """Every section of ``schema`` (the spec language's by default), the top level first, then each
    nested mapping right after the section that holds it, in the models' field order. A model met
    again (a stage's ``block``) refers to where its keys are listed instead of repeating them."""
    root = spec_schema() if schema is None else schema
    walk = _Walk(root.get("$defs", {}))
    walk.section("", root)
    return walk.sections


class _Walk:
    def __init__(self, defs: Schema) -> None:
        self.defs = defs
        self.listed_at: dict[str, str] = {}  # model name -> the path whose section lists its keys
        self.sections: list[Section] = []

    def section(self, path: str, model: Schema) -> None:
        rows: list[FieldRow] = []
        children: list[tuple[str, Schema]] = []
        required = set(model.get("required", ()))
        for name, node in model.get("properties", {}).items():
            key = f"{path}.{name}" if path else name
            ref, in_list = _model_ref(node)
            if ref is None:
                kind = _kind(node)
            else:
                ref_path = f"{key}[]" if in_list else key
                home = self.listed_at.setdefault(ref, ref_path)
                if home == ref_path:
                    children.append((ref_path, self.defs[ref]))
                kind = _model_kind(node, home, in_list, own=home == ref_path)
            default = self.default(node, name in required, ref)
            rows.append(FieldRow(key, kind, default, _inline(node.get("description", ""))))
        self.sections.append(Section(path, _paragraphs(model.get("description", "")), tuple(rows)))
        for child_path, child in children:
            self.section(child_path, child)

    def default(self, node: Schema, required: bool, ref: str | None) -> str:
        if required:
            return REQUIRED
        if "default" not in node:
            return NO_DEFAULT
        value = node["default"]
        # A section's default dump may leave out options of other kinds (a basic block's has no radix).
        if ref is not None and isinstance(value, dict) and value.items() <= _defaults_of(self.defs[ref]).items():
            return SECTION_DEFAULTS
        return f"`{format_value(value)}`"


def format_value(value: Any) -> str:
    """A value as a spec would write it: JSON scalars and lists, text bare unless it would read as
    something else (``3x3`` stays bare, an empty or numeric-looking string is quoted)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return value if value.strip() == value and value else json.dumps(value)
        return json.dumps(value)
    return json.dumps(value)


def _defaults_of(model: Schema) -> dict[str, Any]:
    return {name: node["default"] for name, node in model.get("properties", {}).items() if "default" in node}


def _model_ref(node: Schema) -> tuple[str | None, bool]:
    """The model a property holds (directly, as ``X | None`` or as a list of them) and whether in a list."""
    for candidate in (node, *node.get("anyOf", ())):
        if "$ref" in candidate:
            return _ref_name(candidate["$ref"]), False
        items = candidate.get("items")
        if candidate.get("type") == "array" and isinstance(items, Mapping) and "$ref" in items:
            return _ref_name(items["$ref"]), True
    return None, False


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _model_kind(node: Schema, home: str, in_list: bool, *, own: bool) -> str:
    where = f"keys in `{home}` below" if own else f"the keys of `{home}`"
    if in_list:
        array = next(c for c in (node, *node.get("anyOf", ())) if c.get("type") == "array")
        text = f"list{_count(array)} of mappings ({where})"
    else:
        text = f"mapping ({where})"
    if any(member.get("type") == "null" for member in node.get("anyOf", ())):
        text += " or `null`"
    return text


def _kind(node: Schema) -> str:
    """Type, allowed values and bounds of a schema node in words: ``integer, 1 ≤ x ≤ 4096``."""
    if "anyOf" in node:
        return " or ".join(_kind(member) for member in node["anyOf"])
    if "enum" in node:
        return " / ".join(f"`{format_value(value)}`" for value in node["enum"])
    if "const" in node:
        return f"`{format_value(node['const'])}`"
    kind = str(node.get("type"))
    if kind == "null":
        return "`null`"
    if kind == "boolean":
        return "`true` / `false`"
    if kind in ("integer", "number"):
        return kind + _bounds(node)
    if kind == "string":
        return "text" + _length(node)
    if kind == "array":
        return _array(node)
    if kind == "object":
        return "mapping"
    raise ValueError(f"no wording for the schema node {json.dumps(node, sort_keys=True)}")


def _bounds(node: Schema) -> str:
    low = next(((op, node[key]) for key, op in (("minimum", "≤"), ("exclusiveMinimum", "<")) if key in node), None)
    high = next(((op, node[key]) for key, op in (("maximum", "≤"), ("exclusiveMaximum", "<")) if key in node), None)
    if low and high:
        return f", {_number(low[1])} {low[0]} x {high[0]} {_number(high[1])}"
    if low:
        return f", x {'≥' if low[0] == '≤' else '>'} {_number(low[1])}"
    if high:
        return f", x {high[0]} {_number(high[1])}"
    return ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _length(node: Schema) -> str:
    low, high = node.get("minLength", 0), node.get("maxLength")
    if high is not None:
        return f", {low} to {high} characters" if low else f", up to {high} characters"
    return f", at least {low} characters" if low else ""


def _count(node: Schema) -> str:
    """How many items a list holds, as `` (1 to 17 items)``; empty when any number will do."""
    low, high = node.get("minItems", 0), node.get("maxItems")
    if high is not None:
        span = str(high) if low == high else f"{low} to {high}" if low else f"up to {high}"
    elif low:
        span = f"at least {low}"
    else:
        return ""
    return f" ({span} item{'' if span == '1' else 's'})"


def _array(node: Schema) -> str:
    prefix = node.get("prefixItems")
    if prefix:
        kinds = [_kind(item) for item in prefix]
        if len(set(kinds)) == 1 and "items" not in node:
            return f"list ({len(kinds)} items) of ({kinds[0]})"
        return "list of " + ", then ".join(f"({kind})" for kind in kinds)
    items = node.get("items")
    return f"list{_count(node)} of ({_kind(items)})" if isinstance(items, Mapping) else f"list{_count(node)}"


def _inline(text: str) -> str:
    """Docstring text as one Markdown table cell: reST literals as code, one line, pipes escaped."""
    return " ".join(_markdown(text).split()).replace("|", "\\|")


def _paragraphs(text: str) -> str:
    return "\n\n".join(" ".join(block.split()) for block in _markdown(text).split("\n\n") if block.strip())


def _markdown(text: str) -> str:
    return re.sub(r"``(.+?)``", r"`\1`", text, flags=re.DOTALL)


def render_markdown(sections: list[Section]) -> str:
    """One heading, intro and table per section, ending in a newline."""
    lines = [
        "Keys are written as dotted paths, as `--set` takes them; `stages[]` stands for each stage "
        "(`stages[0]`, `stages[1]`, ...). Generated from the pydantic models by "
        "`resnet-gen schema --markdown`.",
        "",
    ]
    for section in sections:
        lines.append(f"#### `{section.path}`" if section.path else "#### Top level")
        lines.append("")
        if section.intro:
            lines += [section.intro, ""]
        lines += ["| key | type and allowed values | default | description |", "|---|---|---|---|"]
        for row in section.rows:
            lines.append(f"| `{row.path}` | {row.kind} | {row.default} | {row.description} |")
        lines.append("")
    return "\n".join(lines)


def update_file(path: Path, reference: str) -> bool:
    """Rewrite the field reference between the markers in ``path``; returns whether anything changed."""
    return marked_section.update_marked_file(path, reference, START, END)
