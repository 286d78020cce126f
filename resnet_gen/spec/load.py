"""Front end: spec file or catalog name -> resolved mapping (extends, overrides) -> validated Spec.

Validation only; :mod:`resnet_gen.compile` goes on to the plan and places the planner's problems
with the same rules (:func:`place`)."""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from .. import catalog, paths
from ..errors import Location, SpecError, located
from . import messages
from .model import Spec
from .yaml_source import KeyPath, LocatedMapping, format_path, load_plain_value, read_yaml_file

# Identity fields describe one spec file; a child never inherits them from its parent.
_NOT_INHERITED = ("name", "description", "reference")
_MAX_EXTENDS_DEPTH = 32
_Checked = TypeVar("_Checked")  # what a layout's check returns (its spec, or its spec and plan)


def read_spec(
    source: str | Path,
    overrides: Mapping[str, Any] | list[str] | None = None,
    *,
    parents: ParentCache | None = None,
) -> tuple[LocatedMapping, LocatedMapping | None, Location | None]:
    """A spec file or catalog name with ``extends`` and ``overrides`` applied, not yet validated:
    the mapping, the mapping before the overrides (None without any) and where the overrides were
    given (``--set``, or ``overrides`` from Python), which :func:`validate` needs to place problems.

    ``overrides`` is a mapping of dotted paths to values (``{"stages[3].blocks": 4}``) or a list of
    ``"path=value"`` strings as given to ``--set``. ``parents`` lets the specs of one run share the
    parents they extend (see :class:`ParentCache`)."""
    return with_overrides(resolve(source, parents=parents), overrides)


def with_overrides(
    mapping: LocatedMapping, overrides: Mapping[str, Any] | list[str] | None = None
) -> tuple[LocatedMapping, LocatedMapping | None, Location | None]:
    """:func:`read_spec` of a classifier spec already resolved (``extends`` applied): ``mapping``
    with the overrides applied in place, the mapping before them, and where they were given."""
    refuse_other_layout(mapping)
    if not overrides:
        return mapping, None, None
    unchanged = mapping.copy()
    where = SET if isinstance(overrides, list) else PYTHON_OVERRIDES
    apply_overrides(
        mapping, parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides), where=where
    )
    return mapping, unchanged, where


def spec_path(source: str | Path) -> Path:
    """A path as given, or the catalog file of a bare name."""
    text = str(source)
    problem = paths.name_problem(text)
    if problem is not None:
        raise SpecError(located(Location(paths.shown(text)), "", f"{problem}; name a .yaml file"))
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or paths.kind(path) != "missing" or "/" in text or "\\" in text:
        return path
    candidate = catalog.catalog_path(text)
    if paths.kind(candidate) != "file":
        names = catalog.catalog_names()
        hint = messages.close_matches(text, names)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else "; run 'resnet-gen list' for the catalog"
        raise SpecError(located(Location(text), "", f"no spec file and no catalog spec of that name{suggestion}"))
    return candidate


def resolve(source: str | Path, *, parents: ParentCache | None = None) -> LocatedMapping:
    """Read a spec and everything it extends into one merged mapping with locations."""
    root = spec_path(source)
    resolved = paths.resolve(root)
    if isinstance(resolved, str):
        raise SpecError(located(Location(str(root)), "", f"{resolved}; point it at a .yaml file"))
    folders = _Folders(resolved.parent, _resolved_cwd(os.getcwd()), _catalog_folder())
    # A spec is shared with the run's parents under the name a parent goes by, where that names
    # and labels it alike: one read serves it as a spec and as the parent of others.
    shared = (
        parents is not None
        and root.name == resolved.name
        and _label(root, resolved, folders) == _label(resolved, resolved, folders)
    )
    cached = parents.get(resolved, folders, 0) if parents is not None and shared else None
    if cached is not None:
        return cached[0]
    mapping, levels = _resolve_file(root, resolved, folders, (), parents)
    if parents is not None and shared:
        parents.put(resolved, folders, mapping, levels)
    return mapping


@functools.lru_cache(maxsize=8)
def _resolved_cwd(cwd: str) -> Path:
    """The working folder with its links followed, once per folder a process works in."""
    return Path(cwd).resolve()


@functools.cache
def _catalog_folder() -> Path:
    return catalog.specs_dir().resolve()


@dataclass(frozen=True)
class _Folders:
    """The folders one resolution names and finds files against, each resolved once
    (``Path.resolve`` costs a system call per path component)."""

    root: Path  # the folder of the spec being loaded
    cwd: Path
    specs: Path  # the catalog


class ParentCache:
    """The specs and parents resolved so far in one run over several specs, so that the catalog's
    many children of resnet50 read and merge its chain once, and resnet50 itself is read once. Only for a run in which the files do not
    change (one command); what it returns is the same as resolving afresh, errors included."""

    def __init__(self) -> None:
        # (parent as named, folders) -> (the resolved parent, how many levels of extends it has)
        self._entries: dict[tuple[Path, _Folders], tuple[LocatedMapping, int]] = {}

    def get(self, path: Path, folders: _Folders, chain_length: int) -> tuple[LocatedMapping, int] | None:
        """A copy of the parent and its levels, when resolving it under ``chain_length`` files
        that extend it would succeed (too deep a chain must go the long way, to its error)."""
        found = self._entries.get((path, folders))
        if found is None:
            return None
        mapping, levels = found
        if levels and chain_length + levels > _MAX_EXTENDS_DEPTH:
            return None
        return mapping.copy(), levels

    def put(self, path: Path, folders: _Folders, mapping: LocatedMapping, levels: int) -> None:
        self._entries[(path, folders)] = (mapping.copy(), levels)


def _label(path: Path, resolved: Path, folders: _Folders) -> str:
    """How a file is named in messages: relative to the working folder when inside it."""
    try:
        return str(resolved.relative_to(folders.cwd))
    except ValueError:
        if resolved.is_relative_to(folders.specs):
            return f"specs/{resolved.relative_to(folders.specs)}"
        return str(path)


def _resolve_file(
    path: Path, resolved: Path, folders: _Folders, chain: tuple[Path, ...], parents: ParentCache | None
) -> tuple[LocatedMapping, int]:
    """``path`` (which resolves to ``resolved``) merged over everything it extends, and the number
    of levels of extends that took; ``chain`` holds the resolved files that extend it, nearest last."""
    own = read_yaml_file(path, _label(path, resolved, folders))
    parent_ref = own.data.pop("extends", None)
    if parent_ref is None:
        own.data.setdefault("name", path.stem)
        return own, 0
    where = own.where(("extends",))
    if not isinstance(parent_ref, str) or not parent_ref:
        raise SpecError(
            located(
                where,
                "extends",
                f"must be a catalog name or a relative path to a .yaml file (got {messages.got(parent_ref)})",
            )
        )
    parent_path, parent_resolved = _parent_path(parent_ref, resolved.parent, folders, where)
    if parent_resolved in chain or parent_resolved == resolved:
        cycle = " -> ".join(p.name for p in (*chain, resolved, parent_resolved))
        raise SpecError(
            located(where, "extends", f"extends goes round in a cycle ({cycle}); one of them must not extend")
        )
    if len(chain) >= _MAX_EXTENDS_DEPTH:
        raise SpecError(
            located(where, "extends", f"more than {_MAX_EXTENDS_DEPTH} levels of extends; flatten the chain")
        )
    # A parent resolved earlier in the run has no cycle back to this file (that would have failed
    # it), so only the checks above are needed before using it.
    cached = parents.get(parent_path, folders, len(chain) + 1) if parents is not None else None
    if cached is not None:
        parent, levels = cached
    else:
        parent, levels = _resolve_file(parent_path, parent_resolved, folders, (*chain, resolved), parents)
        if parents is not None:
            parents.put(parent_path, folders, parent, levels)
    for key in _NOT_INHERITED:
        parent.data.pop(key, None)
    own.data.setdefault("name", path.stem)
    own.data.setdefault("description", f"Derived from {parent_path.stem}.")
    return _merge(parent, own), levels + 1


def _parent_path(ref: str, child_dir: Path, folders: _Folders, where: Location) -> tuple[Path, Path]:
    """The file ``extends: ref`` names, from a spec in the (resolved) folder ``child_dir``, and
    that file resolved. A path and a bare name obey one rule: what they reach, links followed,
    lies in the spec's folder or the catalog (a sibling link to /etc/passwd is refused unread)."""
    problem = paths.name_problem(ref)
    if problem is not None:
        raise SpecError(located(where, "extends", f"{paths.shown(ref)!r} {problem}; name a .yaml file"))
    is_path = ref.endswith((".yaml", ".yml")) or "/" in ref
    if is_path:
        candidate = child_dir / ref
    else:
        # A bare name: a sibling file first, then the catalog.
        sibling = child_dir / f"{ref}.yaml"
        candidate = sibling if paths.kind(sibling) != "missing" else folders.specs / f"{ref}.yaml"
    resolved = paths.resolve(candidate)
    if isinstance(resolved, str):
        raise SpecError(located(where, "extends", f"{paths.shown(ref)!r} {resolved}; point it at a .yaml file"))
    allowed = (folders.root, folders.specs, child_dir)
    if not any(resolved.is_relative_to(folder) for folder in allowed):
        raise SpecError(
            located(
                where,
                "extends",
                f"{paths.shown(ref)!r} is outside the spec's folder and the catalog; copy the parent next to the spec",
            )
        )
    if paths.kind(resolved) != "file":
        names = catalog.catalog_names()
        hint = messages.close_matches(Path(ref).stem, names)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else "; 'resnet-gen list' shows the catalog"
        if is_path:
            problem = f"parent spec {paths.shown(ref)!r} not found (a path is relative to this spec's folder)"
        else:
            problem = f"parent spec {paths.shown(ref)!r} is neither next to this spec nor in the catalog{suggestion}"
        raise SpecError(located(where, "extends", problem))
    return (resolved if is_path else candidate), resolved


def _merge(parent: LocatedMapping, child: LocatedMapping) -> LocatedMapping:
    """Deep-merge ``child`` over ``parent``: mappings merge, everything else (lists too) replaces."""
    replaced: set[KeyPath] = set()

    def merge(base: dict[str, Any], over: dict[str, Any], path: KeyPath) -> dict[str, Any]:
        out = dict(base)
        for key, value in over.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value, here)
            else:
                replaced.add(here)
                out[key] = value
        return out

    data = merge(parent.data, child.data, ())
    # The parent's locations at and under a replaced value are stale.
    locations = {
        path: where
        for path, where in parent.locations.items()
        if not any(path[:end] in replaced for end in range(1, len(path) + 1))
    }
    locations.update(child.locations)
    return LocatedMapping(data, locations, child.source)


_PATH_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
SET = Location("--set")
PYTHON_OVERRIDES = Location("overrides")  # the overrides= mapping of load_spec
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
            raise SpecError(located(SET, text, _BAD_PATH))
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not parts or not isinstance(parts[0], str):
        raise SpecError(located(SET, text, _BAD_PATH))
    return tuple(parts)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["head.num_classes=10"]`` -> ``{"head.num_classes": 10}`` (values read as YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(located(SET, item, "expected PATH=VALUE, for example --set head.num_classes=10"))
        try:
            out[key.strip()] = load_plain_value(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
            syntax = isinstance(exc, (yaml.scanner.ScannerError, yaml.parser.ParserError))
            hint = "; quote text values" if syntax else ""
            raise SpecError(located(SET, key.strip(), f"cannot read the value {raw!r}: {problem}{hint}")) from None
    return out


def apply_overrides(mapping: LocatedMapping, overrides: dict[str, Any], *, where: Location = SET) -> None:
    """Set each dotted path in place; the path's parents must exist (lists) or are created (mappings).
    Problems are located at ``where``: ``--set``, or ``overrides`` from Python."""
    for text, value in overrides.items():
        path = parse_key_path(text)
        node: Any = mapping.data
        created: list[KeyPath] = []
        for depth, part in enumerate(path):
            _check_override_step(node, path, depth, where)
            if depth == len(path) - 1:
                node[part] = copy.deepcopy(value)
            elif isinstance(part, str) and node.get(part) is None:
                node[part] = {}
                created.append(path[: depth + 1])
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
        for made in created:  # a key missing inside a mapping the override made is the override's
            mapping.locations[made] = where


def _check_override_step(node: Any, path: KeyPath, depth: int, where: Location) -> None:
    """Raise a located SpecError unless ``path[depth]`` can be followed (or set) inside ``node``."""
    part = path[depth]
    parent = format_path(path[:depth])
    if isinstance(part, int):
        if not isinstance(node, list):
            shown = f"{parent} is {messages.got(node)}" if node != {} else f"{parent} is not set"
            raise SpecError(
                located(where, format_path(path), f"{shown}, not a list; set it whole: --set {parent}=[...]")
            )
        if part >= len(node):
            raise SpecError(
                located(
                    where,
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
                where, format_path(path), f"{parent} is {messages.got(node)}, not a mapping, so it has no key {part!r}"
            )
        )
    known = messages.fields_at(tuple(p for p in path[:depth]))
    if known and part not in known:
        raise SpecError(located(where, format_path(path[: depth + 1]), messages.unknown_key_message(path[: depth + 1])))


def is_unet(source: str | Path, *, parents: ParentCache | None = None) -> bool:
    """Whether ``source`` names a U-Net spec (``layout: unet``, its own or inherited). A spec
    that cannot be read is not one: the classifier loader then reports why. It lives here, not
    in :mod:`resnet_gen.unet`, so that a command can ask without importing the U-Net models."""
    try:
        return is_unet_mapping(resolve(source, parents=parents))
    except SpecError:
        return False


def is_unet_mapping(mapping: LocatedMapping) -> bool:
    """Whether a resolved spec is a U-Net's (``layout: unet``, its own or inherited)."""
    return mapping.data.get("layout") == "unet"


def refuse_other_layout(mapping: LocatedMapping) -> None:
    """A U-Net spec (``layout: unet``) is not a classifier: refuse it here, so that every command
    and function made for classifiers says so in one located line."""
    if is_unet_mapping(mapping):
        raise SpecError(
            located(
                mapping.where(("layout",)),
                "layout",
                "a diffusion U-Net spec; this works on classifier specs only (U-Nets: validate, info,"
                " diagram, build, list, diff, new, gallery, export, and resnet_gen.unet in Python)",
            )
        )


def validated_by(
    check: Callable[[LocatedMapping], _Checked],
    mapping: LocatedMapping,
    *,
    unchanged: LocatedMapping | None = None,
    overrides_at: Location | None = None,
) -> _Checked:
    """Another layout's ``check`` (mapping -> its spec and plan, raising :class:`Problems`), its
    problems placed as :func:`validate` places a classifier's."""
    try:
        return check(mapping)
    except Problems as exc:
        found = exc.found
    blame = (overrides_at or SET) if unchanged is not None and _passes(check, unchanged) else None
    raise SpecError(place(found, mapping, blame)) from None


def _passes(check: Callable[[LocatedMapping], object], mapping: LocatedMapping) -> bool:
    try:
        check(mapping)
    except Problems:
        return False
    return True


def model_problems(exc: ValidationError) -> Problems:
    """Pydantic's errors as problems, not yet placed."""
    return Problems(
        [
            Found(messages.error_path(error), messages.message(error), error["type"] == "value_error")
            for error in messages.select(exc.errors(include_url=False))
        ]
    )


def validate(
    mapping: LocatedMapping, *, unchanged: LocatedMapping | None = None, overrides_at: Location | None = None
) -> Spec:
    """Validate a resolved mapping, turning pydantic's errors into located one-line messages.

    ``unchanged`` is the mapping before the overrides: when it is valid, the overrides broke it,
    and problems are placed where they were given (``overrides_at``), with the file's line as a
    note, instead of at a catalog file the user cannot edit. Validation only: a spec whose shapes
    collapse to nothing is valid here and refused by the planner (see :mod:`resnet_gen.compile`)."""
    return validated_by(check, mapping, unchanged=unchanged, overrides_at=overrides_at)


@dataclass(frozen=True)
class Found:
    """One problem before it is placed: the key path it is about (None: the whole spec), and
    whether it comes from a rule across keys (or from the planner) rather than one value's type
    or bound, so that the key it names may not be the one that changed."""

    path: KeyPath | None
    message: str
    across_keys: bool


class Problems(Exception):
    """The problems of one spec, not yet placed (:func:`place` makes them located lines)."""

    def __init__(self, found: list[Found]) -> None:
        super().__init__(len(found))
        self.found = found


def check(mapping: LocatedMapping) -> Spec:
    """The Spec of ``mapping``, or :class:`Problems` for what pydantic refuses."""
    try:
        return Spec.model_validate(mapping.data)
    except ValidationError as exc:
        raise model_problems(exc) from None


def plan_problem(problem: str) -> Found:
    """The planner says ``input.size: too small ...``; keep the key path it names."""
    key, sep, message = problem.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_][\w.\[\]]*", key):
        try:
            return Found(parse_key_path(key), message, True)
        except SpecError:
            pass
    return Found(None, problem, True)


def place(found: list[Found], mapping: LocatedMapping, blame: Location | None) -> list[str]:
    """One located line per problem (at most ``messages.MAX_PROBLEMS``, then a count). A rule
    across keys that fails at a key the user did not write (a parent's, when the child or an
    override changed another key) is placed where the change was, noting the key's own line."""
    problems: dict[str, None] = {}
    for index, item in enumerate(found):
        if len(problems) == messages.MAX_PROBLEMS:
            left = len(found) - index
            more = f"and {left:,} more problem{'s' if left != 1 else ''}; fix these first"
            problems[located(mapping.where(()), "", more)] = None
            break
        if item.path is None:
            problems[located(mapping.where(()), "", item.message)] = None
            continue
        key = format_path(item.path)
        where, note = mapping.where(item.path), ""
        if item.across_keys and where.source not in (SET.source, PYTHON_OVERRIDES.source):
            if blame is not None:
                where, note = blame, f" ({key} is set at {where})"
            elif where.source != mapping.source:
                note = f" ({key} is inherited from {where})"
                where = mapping.locations.get(("extends",), Location(mapping.source))
        problems[located(where, key, item.message + note)] = None
    return list(problems)
