"""Front end: spec file or catalog name -> resolved mapping (extends, overrides) -> validated Spec."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .. import catalog
from ..errors import Location, SpecError, located
from . import messages
from .model import Spec
from .yaml_source import KeyPath, LocatedMapping, format_path, load_plain_value, read_yaml_file

# Identity fields describe one spec file; a child never inherits them from its parent.
_NOT_INHERITED = ("name", "description", "reference")
_MAX_EXTENDS_DEPTH = 32


def load_spec(source: str | Path, overrides: Mapping[str, Any] | list[str] | None = None) -> Spec:
    """Load a spec from a file path or a catalog name, apply ``extends`` and overrides, validate.

    ``overrides`` is a mapping of dotted paths to values (``{"stages[3].blocks": 4}``) or a list of
    ``"path=value"`` strings as given to ``--set``. Raises :class:`SpecError` on any problem.
    """
    mapping = resolve(source)
    if overrides:
        apply_overrides(mapping, parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides))
    return validate(mapping)


def spec_path(source: str | Path) -> Path:
    """A path as given, or the catalog file of a bare name."""
    text = str(source)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in text or "\\" in text:
        return path
    candidate = catalog.catalog_path(text)
    if not candidate.exists():
        names = catalog.catalog_names()
        hint = difflib.get_close_matches(text, names, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else "; run 'resnet-gen list' for the catalog"
        raise SpecError(located(Location(text), "", f"no spec file and no catalog spec of that name{suggestion}"))
    return candidate


def resolve(source: str | Path) -> LocatedMapping:
    """Read a spec and everything it extends into one merged mapping with locations."""
    root = spec_path(source)
    return _resolve_file(root, root.resolve().parent, chain=())


def _label(path: Path) -> str:
    """How a file is named in messages: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        specs = catalog.specs_dir().resolve()
        resolved = path.resolve()
        if resolved.is_relative_to(specs):
            return f"specs/{resolved.relative_to(specs)}"
        return str(path)


def _resolve_file(path: Path, root_dir: Path, chain: tuple[Path, ...]) -> LocatedMapping:
    own = read_yaml_file(path, _label(path))
    parent_ref = own.data.pop("extends", None)
    if parent_ref is None:
        own.data.setdefault("name", path.stem)
        return own
    where = own.where(("extends",))
    if not isinstance(parent_ref, str) or not parent_ref:
        raise SpecError(
            located(
                where,
                "extends",
                f"must be a catalog name or a relative path to a .yaml file (got {messages.got(parent_ref)})",
            )
        )
    parent_path = _parent_path(parent_ref, path, root_dir, where)
    resolved = parent_path.resolve()
    if resolved in chain or resolved == path.resolve():
        cycle = " -> ".join(p.name for p in (*chain, path.resolve(), resolved))
        raise SpecError(
            located(where, "extends", f"extends goes round in a cycle ({cycle}); one of them must not extend")
        )
    if len(chain) >= _MAX_EXTENDS_DEPTH:
        raise SpecError(
            located(where, "extends", f"more than {_MAX_EXTENDS_DEPTH} levels of extends; flatten the chain")
        )
    parent = _resolve_file(parent_path, root_dir, (*chain, path.resolve()))
    for key in _NOT_INHERITED:
        parent.data.pop(key, None)
    own.data.setdefault("name", path.stem)
    own.data.setdefault("description", f"Derived from {parent_path.stem}.")
    return _merge(parent, own)


def _parent_path(ref: str, child: Path, root_dir: Path, where: Location) -> Path:
    specs = catalog.specs_dir().resolve()
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        candidate = (child.resolve().parent / ref).resolve()
        allowed = (root_dir, specs, child.resolve().parent)
        if not any(candidate.is_relative_to(folder) for folder in allowed):
            raise SpecError(
                located(
                    where,
                    "extends",
                    f"{ref!r} is outside the spec's folder and the catalog; copy the parent next to the spec",
                )
            )
    else:
        # A bare name: a sibling file first, then the catalog.
        sibling = child.resolve().parent / f"{ref}.yaml"
        candidate = sibling if sibling.exists() else specs / f"{ref}.yaml"
    if not candidate.is_file():
        names = catalog.catalog_names()
        hint = difflib.get_close_matches(Path(ref).stem, names, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else "; 'resnet-gen list' shows the catalog"
        if ref.endswith((".yaml", ".yml")) or "/" in ref:
            problem = f"parent spec {ref!r} not found (a path is relative to this spec's folder)"
        else:
            problem = f"parent spec {ref!r} is neither next to this spec nor in the catalog{suggestion}"
        raise SpecError(located(where, "extends", problem))
    return candidate


def _merge(parent: LocatedMapping, child: LocatedMapping) -> LocatedMapping:
    """Deep-merge ``child`` over ``parent``: mappings merge, everything else (lists too) replaces."""
    locations = dict(parent.locations)

    def merge(base: dict[str, Any], over: dict[str, Any], path: KeyPath) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value, here)
            else:
                for stale in [p for p in locations if p[: len(here)] == here]:
                    del locations[stale]
                out[key] = value
        return out

    data = merge(parent.data, child.data, ())
    locations.update(child.locations)
    return LocatedMapping(data, locations, child.source)


_PATH_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_SET = Location("--set")
_BAD_PATH = "bad key path; write it like stages[3].blocks or head.num_classes"


def parse_key_path(text: str) -> KeyPath:
    """``stages[3].blocks`` -> ``('stages', 3, 'blocks')``; raises SpecError on bad syntax."""
    parts: list[str | int] = []
    position = 0
    while position < len(text):
        if parts and text[position] == "." and not isinstance(parts[-1], type(None)):
            position += 1
        match = _PATH_TOKEN.match(text, position)
        if match is None:
            raise SpecError(located(_SET, text, _BAD_PATH))
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not parts or not isinstance(parts[0], str):
        raise SpecError(located(_SET, text, _BAD_PATH))
    return tuple(parts)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["head.num_classes=10"]`` -> ``{"head.num_classes": 10}`` (values read as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(located(_SET, item, "expected PATH=VALUE, for example --set head.num_classes=10"))
        try:
            out[key.strip()] = load_plain_value(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
            syntax = isinstance(exc, (yaml.scanner.ScannerError, yaml.parser.ParserError))
            hint = "; quote text values" if syntax else ""
            raise SpecError(located(_SET, key.strip(), f"cannot read the value {raw!r}: {problem}{hint}")) from None
    return out


def apply_overrides(mapping: LocatedMapping, overrides: dict[str, Any]) -> None:
    """Set each dotted path in place; the path's parents must exist (lists) or are created (mappings)."""
    for text, value in overrides.items():
        path = parse_key_path(text)
        where = _SET
        node: Any = mapping.data
        for depth, part in enumerate(path):
            _check_override_step(node, path, depth)
            if depth == len(path) - 1:
                node[part] = copy.deepcopy(value)
            elif isinstance(part, str) and node.get(part) is None:
                node[part] = {}
            elif (
                isinstance(part, str)
                and isinstance(node[part], str)
                and "type" in messages.fields_at(path[: depth + 1])
            ):
                node[part] = {"type": node[part]}  # the shorthand ``norm: batch`` gains a second key
            node = node[part]
        for stale in [p for p in mapping.locations if p[: len(path)] == path]:
            del mapping.locations[stale]
        mapping.locations[path] = where


def _check_override_step(node: Any, path: KeyPath, depth: int) -> None:
    """Raise a located SpecError unless ``path[depth]`` can be followed (or set) inside ``node``."""
    part = path[depth]
    parent = format_path(path[:depth])
    if isinstance(part, int):
        if not isinstance(node, list):
            shown = f"{parent} is {messages.got(node)}" if node != {} else f"{parent} is not set"
            raise SpecError(
                located(_SET, format_path(path), f"{shown}, not a list; set it whole: --set {parent}=[...]")
            )
        if part >= len(node):
            raise SpecError(
                located(
                    _SET,
                    format_path(path),
                    f"no such list item; {parent} has {len(node)} item{'s' if len(node) != 1 else ''}"
                    + (f" (indices 0 to {len(node) - 1})" if node else "")
                    + f"; to change their number, set it whole: --set {parent}=[...]",
                )
            )
        return
    if not isinstance(node, dict):
        raise SpecError(
            located(
                _SET, format_path(path), f"{parent} is {messages.got(node)}, not a mapping, so it has no key {part!r}"
            )
        )
    known = messages.fields_at(tuple(p for p in path[:depth]))
    if known and part not in known:
        raise SpecError(located(_SET, format_path(path[: depth + 1]), messages.unknown_key_message(path[: depth + 1])))


def validate(mapping: LocatedMapping) -> Spec:
    """Validate a resolved mapping, turning pydantic's errors into located one-line messages.
    A spec must also lower to a plan: shapes that collapse to nothing are errors here, located."""
    spec = _validate_fields(mapping)
    from ..plan.lower import lower  # the planner imports the spec models, so only now

    try:
        lower(spec)
    except SpecError as exc:
        raise SpecError([_locate_plan_problem(problem, mapping) for problem in exc.problems]) from None
    return spec


def _locate_plan_problem(problem: str, mapping: LocatedMapping) -> str:
    """The planner says ``input.size: too small ...``; point that at the key in the spec file."""
    key, sep, message = problem.partition(": ")
    if not sep or not re.fullmatch(r"[A-Za-z_][\w.\[\]]*", key):
        return located(mapping.where(()), "", problem)
    try:
        path = parse_key_path(key)
    except SpecError:
        return located(mapping.where(()), "", problem)
    return located(mapping.where(path), key, message)


def _validate_fields(mapping: LocatedMapping) -> Spec:
    try:
        return Spec.model_validate(mapping.data)
    except ValidationError as exc:
        problems = []
        for error in messages.select(exc.errors(include_url=False)):
            path = messages.error_path(error)
            problems.append(located(mapping.where(path), format_path(path), messages.message(error)))
        raise SpecError(list(dict.fromkeys(problems))) from None
