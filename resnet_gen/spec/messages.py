"""Pydantic's validation errors, rewritten as messages a spec author can act on.

Each message says what is wrong and what would be right, using the language's own definition
(the pydantic models) to describe the expected value: ``must be an integer from 1 to 10000
(got 'two')``, ``unknown key 'strid'; did you mean 'stride'?``.
"""

from __future__ import annotations

import contextlib
import functools
import types
import typing
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from .model import BlockSpec, Spec
from .yaml_source import KeyPath

_GOT_LIMIT = 60  # characters of the offending value quoted back
# Problems reported per file: past this, one more line says how many were left out (a file of
# ten thousand unknown keys needs one look, not megabytes of errors).
MAX_PROBLEMS = 50
# The model a spec file is read against: the classifier language, or another layout's (a U-Net's).
_ROOT: ContextVar[type[BaseModel]] = ContextVar("spec_root", default=Spec)


@contextlib.contextmanager
def root_model(model: type[BaseModel]) -> Iterator[None]:
    """Describe keys and values against ``model`` instead of ``Spec`` while the block runs."""
    token = _ROOT.set(model)
    try:
        yield
    finally:
        _ROOT.reset(token)


def clean_path(loc: Iterable[Any], kind: str = "") -> KeyPath:
    """Pydantic's location without the names it gives union members (``int``, ``tuple[int, int]``).
    The last part of an unknown-key error is the user's key, whatever it looks like (``'0'``)."""
    parts = tuple(loc)
    return tuple(part for index, part in enumerate(parts) if not _is_tag_at(parts, index, kind))


def error_path(error: ErrorDetails) -> KeyPath:
    return clean_path(error["loc"], error["type"])


def _is_tag_at(loc: tuple[Any, ...], index: int, kind: str) -> bool:
    if kind == "extra_forbidden" and index == len(loc) - 1:
        return False
    return _is_union_tag(loc[index])


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        not part.isidentifier() or part in {"int", "float", "str", "bool", "tuple", "list"}
    )


def _is_type_error(kind: str) -> bool:
    return kind.endswith(("_type", "_parsing")) or kind in {"int_from_float", "literal_error", "none_required"}


def select(errors: list[ErrorDetails]) -> list[ErrorDetails]:
    """One error per problem. Where a value failed every member of a union (``size: 224`` or
    ``size: [224, 224]``), keep the member error that says something specific (``size[1]: must be
    >= 1``) if there is one, else a single "must be A or B"."""
    groups: dict[KeyPath, list[ErrorDetails]] = {}
    order: list[KeyPath | ErrorDetails] = []
    for error in errors:
        loc = tuple(error["loc"])
        tag = next((index for index in range(len(loc)) if _is_tag_at(loc, index, error["type"])), None)
        if tag is None:
            order.append(error)
            continue
        base = clean_path(loc[:tag])
        if base not in groups:
            groups[base] = []
            order.append(base)
        groups[base].append(error)
    chosen: list[ErrorDetails] = []
    for item in order:
        if isinstance(item, tuple):
            group = groups[item]
            chosen.extend([e for e in group if not _is_type_error(e["type"])][:1] or group[:1])
        else:
            chosen.append(item)
    return [error for error in chosen if not _explained_by_typo(error, chosen)]


def _explained_by_typo(error: ErrorDetails, errors: list[ErrorDetails]) -> bool:
    """A missing ``stages`` next to an unknown ``stagez``: the typo is the one problem to report."""
    if error["type"] != "missing":
        return False
    path = error_path(error)
    for other in errors:
        other_path = error_path(other)
        if (
            other["type"] == "extra_forbidden"
            and other_path[:-1] == path[:-1]
            and close_matches(str(other_path[-1]), [str(path[-1])])
        ):
            return True
    return False


def message(error: ErrorDetails) -> str:
    """What is wrong with one value and what would be right."""
    path = error_path(error)
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return unknown_key_message(path)
    annotation, metadata = annotation_at(path)
    if kind == "missing":
        if annotation is None:
            return "required key is missing"
        return f"required key is missing; add '{path[-1]}:' with {describe(annotation, metadata)}"
    if kind in {"value_error", "assertion_error"}:
        text = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return text
    bound = _bound_message(kind, ctx)
    if bound is not None:
        number, limits = _without_null(annotation, metadata)
        if kind in _NUMBER_BOUNDS and number in (int, float) and _range_text(limits):
            bound = f"must be {describe(number, limits)}"
        return f"{bound} (got {got(value)})"
    if kind == "literal_error":
        options = _literal_values(annotation)
        hint = ""
        if isinstance(value, str):
            close = closest(value, [str(o) for o in options])
            hint = f"; did you mean {close!r}?" if close else ""
        expected = describe(annotation, metadata) if annotation is not None else f"one of {ctx.get('expected', '')}"
        return f"must be {expected} (got {got(value)}){hint}"
    if annotation is not None and _is_type_error(kind):
        return f"must be {describe(annotation, metadata)} (got {got(value)})"
    text = str(error["msg"])
    return f"{text[0].lower()}{text[1:]} (got {got(value)})"


_NUMBER_BOUNDS = {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}


def close_matches(word: str, options: list[str]) -> list[str]:
    """The nearest spelling of ``word`` among ``options``, if any is near (difflib's ratio 0.6)."""
    import difflib  # messages only: a run of valid specs never loads it

    return difflib.get_close_matches(word, options, n=1, cutoff=0.6)


def closest(word: str, options: list[str]) -> str | None:
    """The option ``word`` was probably meant to be: same letters in another case, else a near spelling."""
    same = [option for option in options if option.lower() == word.lower()]
    if same:
        return same[0]
    close = close_matches(word, options)
    return close[0] if close else None


def got(value: Any) -> str:
    """The offending value as YAML would show it, short enough for one line."""
    if isinstance(value, dict):
        return "a mapping"
    text = _render(value)
    if len(text) <= _GOT_LIMIT:
        return text
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, str):
        return f"text of {len(value):,} characters"
    return f"a number of {len(text):,} digits"


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    return repr(value)


def _bound_message(kind: str, ctx: dict[str, Any]) -> str | None:
    def num(key: str) -> str:
        return _number(ctx[key])

    match kind:
        case "greater_than_equal":
            return f"must be >= {num('ge')}"
        case "greater_than":
            return f"must be > {num('gt')}"
        case "less_than_equal":
            return f"must be <= {num('le')}"
        case "less_than":
            return f"must be < {num('lt')}"
        case "string_too_short":
            return (
                "must not be empty" if ctx.get("min_length") == 1 else f"needs at least {num('min_length')} characters"
            )
        case "string_too_long":
            return f"must be at most {num('max_length')} characters"
        case "too_short":
            return f"needs at least {num('min_length')} item{'s' if ctx.get('min_length') != 1 else ''}"
        case "too_long":
            return f"takes at most {num('max_length')} items"
        case "finite_number":
            return "must be a finite number"
    return None


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else str(value)


def unknown_key_message(path: KeyPath) -> str:
    """``unknown key 'strid'; did you mean 'stride'?``, or where the key does belong."""
    key = str(path[-1])
    fields = fields_at(path[:-1])
    close = closest(key, fields)
    if close:
        return f"unknown key {key!r}; did you mean {close!r}?"
    homes = [p for p in _all_field_paths() if p.rsplit(".", 1)[-1] == key]
    if homes:
        parent = homes[0].rpartition(".")[0]
        return f"unknown key {key!r} here; it belongs " + (f"under {parent!r}" if parent else "at the top level")
    if fields:
        return f"unknown key {key!r}; the keys here are {', '.join(fields)}"
    return f"unknown key {key!r}"


def fields_at(path: KeyPath) -> list[str]:
    """Field names of the model found at ``path`` inside Spec (empty when it is not a model)."""
    annotation, _ = annotation_at(path)
    model = _model_in(annotation)
    return sorted(_fields(model)) if model is not None else []


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields; for the shared block model, every block kind's options."""
    if model is BlockSpec:
        return {name: BlockSpec.option_field(name) for name in BlockSpec.option_names()}
    return dict(model.model_fields)


def annotation_at(path: KeyPath) -> tuple[Any, list[Any]]:
    """The type the language expects at ``path`` and its constraints (``Field(ge=1)``), or None."""
    annotation: Any = _ROOT.get()
    metadata: list[Any] = []
    for part in path:
        annotation, metadata = _strip(annotation, [])
        if isinstance(part, int):
            element = _element_type(annotation, part)
            if element is None:
                return None, []
            annotation, metadata = _strip(element, [])
            continue
        model = _model_in(annotation)
        field = _fields(model).get(part) if model is not None else None
        if field is None:
            return None, []
        annotation, metadata = _strip(field.annotation, list(field.metadata))
    return annotation, metadata


def _strip(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation, metadata = args[0], [*metadata, *args[1:]]
    return annotation, metadata


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _element_type(annotation: Any, index: int) -> Any:
    for member in _members(annotation):
        member, _ = _strip(member, [])
        origin = typing.get_origin(member)
        args = typing.get_args(member)
        if origin is list and args:
            return args[0]
        if origin is tuple and args:
            return args[-2] if len(args) == 2 and args[-1] is Ellipsis else args[min(index, len(args) - 1)]
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for member in _members(annotation):
        member, _ = _strip(member, [])
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _literal_values(annotation: Any) -> list[Any]:
    values: list[Any] = []
    for member in _members(annotation):
        member, _ = _strip(member, [])
        if typing.get_origin(member) is Literal:
            values.extend(typing.get_args(member))
    return values


def describe(annotation: Any, metadata: list[Any] | None = None) -> str:
    """An expected type in words: ``an integer from 1 to 10000``, ``1 or 2``, ``a mapping or null``."""
    annotation, metadata = _strip(annotation, list(metadata or []))
    members = _members(annotation)
    if len(members) > 1:
        values = [_literal_words(m) for m in members if m is not type(None)]
        if all(values):  # Literal[8, 16, 32] | None -> one of 8, 16, 32 or null
            options = [word for words in values for word in words] + (["null"] if type(None) in members else [])
            return _join(options, "or") if len(options) <= 2 else f"one of {_join(options, 'or')}"
        words = [describe(m) for m in members if m is not type(None)]
        if type(None) in members:
            words.append("null")
        return _join(words, "or")
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + _range_text(metadata)
    if annotation is float:
        return "a number" + _range_text(metadata)
    if annotation is str:
        return "text"
    if typing.get_origin(annotation) is Literal:
        options = _literal_words(annotation)
        return _join(options, "or") if len(options) <= 2 else f"one of {_join(options, 'or')}"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is tuple and args and args[-1] is not Ellipsis:
        kinds = {describe(a) for a in args}
        if len(kinds) == 1:
            return f"a list of {len(args)} {_plural(kinds.pop())}"
        return f"a list of {len(args)} items"
    if origin in (list, tuple):
        return "a list"
    model = _model_in(annotation)
    if model is not None:
        type_field = model.model_fields.get("type")
        if type_field is not None and _literal_values(type_field.annotation):
            names = _join([repr(v) for v in _literal_values(type_field.annotation)], "or")
            return f"a mapping or a type name ({names})"
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def _without_null(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """``Annotated[int, Field(ge=1)] | None`` -> ``int`` with its constraints."""
    members = [member for member in _members(annotation) if member is not type(None)]
    return _strip(members[0], metadata) if len(members) == 1 else (annotation, metadata)


def _literal_words(annotation: Any) -> list[str]:
    annotation, _ = _strip(annotation, [])
    if typing.get_origin(annotation) is not Literal:
        return []
    return [repr(v) if isinstance(v, str) else str(v) for v in typing.get_args(annotation)]


def _range_text(metadata: list[Any]) -> str:
    low: Any = None
    high: Any = None
    low_strict = high_strict = False
    for item in metadata:
        for constraint in getattr(item, "metadata", [item]):
            if isinstance(constraint, annotated_types.Ge):
                low = constraint.ge
            elif isinstance(constraint, annotated_types.Gt):
                low, low_strict = constraint.gt, True
            elif isinstance(constraint, annotated_types.Le):
                high = constraint.le
            elif isinstance(constraint, annotated_types.Lt):
                high, high_strict = constraint.lt, True
    if low is None and high is None:
        return ""
    if low is not None and high is not None and not low_strict and not high_strict:
        return f" from {_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_strict else '>='} {_number(low)}")
    if high is not None:
        parts.append(f"{'<' if high_strict else '<='} {_number(high)}")
    return " " + " and ".join(parts)


def _plural(noun_phrase: str) -> str:
    # "an integer from 1 to 16384" -> "integers from 1 to 16384"
    head, _, rest = noun_phrase.removeprefix("an ").removeprefix("a ").partition(" ")
    return f"{head}s" + (f" {rest}" if rest else "")


def _join(words: list[str], conjunction: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _all_field_paths() -> tuple[str, ...]:
    """Every dotted field path of the language, shallowest first (for 'it belongs under ...')."""
    return _field_paths_of(_ROOT.get())


@functools.cache
def _field_paths_of(root: type[BaseModel]) -> tuple[str, ...]:
    out: list[str] = []
    queue: list[tuple[str, type[BaseModel]]] = [("", root)]
    seen: set[type[BaseModel]] = set()
    while queue:
        prefix, model = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        for name, field in _fields(model).items():
            path = f"{prefix}.{name}" if prefix else name
            out.append(path)
            annotation, _ = _strip(field.annotation, [])
            inner = _model_in(annotation) or _model_in(_element_type(annotation, 0))
            if inner is not None:
                queue.append((path, inner))
    return tuple(out)
