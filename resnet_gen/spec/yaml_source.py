"""Read one YAML file safely, remembering the line and column of every key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Location, SpecError, located

KeyPath = tuple[str | int, ...]

# Specs are a few hundred bytes; anything this big is a mistake or an attack.
MAX_SPEC_BYTES = 1_000_000
MAX_NODES = 20_000


@dataclass
class LocatedMapping:
    """A parsed YAML mapping plus the source location of each key path in it."""

    data: dict[str, Any]
    locations: dict[KeyPath, Location] = field(default_factory=dict)
    source: str = "<string>"

    def where(self, path: KeyPath) -> Location:
        """The location of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.locations.get(tuple(path[:end]))
            if found is not None:
                return found
        return Location(self.source)


def format_path(path: KeyPath) -> str:
    """``('stages', 2, 'blocks')`` -> ``stages[2].blocks``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _mark_location(source: str, mark: Any) -> Location:
    return Location(source, mark.line + 1, mark.column + 1)


class _NoAliasSafeLoader(yaml.SafeLoader):
    """Safe loader that refuses anchors and aliases: specs never need them, and they are the
    vector of exponential-expansion ("billion laughs") attacks."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases are not allowed in specs", event.start_mark
            )
        return super().compose_node(parent, index)


def parse_yaml(text: str, source: str) -> LocatedMapping:
    """Parse spec text into a mapping with locations; every failure is a located SpecError."""
    loader = _NoAliasSafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError(located(Location(source), "", "the spec is empty; it needs at least 'stages'"))
        _check_size(node, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _mark_location(source, mark) if mark is not None else Location(source)
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "could not determine a constructor" in problem:
            problem = f"YAML tag {problem.split('tag', 1)[-1].strip()} is not allowed; specs use plain YAML only"
        raise SpecError(located(where, "", f"invalid YAML: {problem}")) from None
    except yaml.YAMLError as exc:
        raise SpecError(located(Location(source), "", f"invalid YAML: {exc}")) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        where = _mark_location(source, node.start_mark)
        kind = type(data).__name__
        raise SpecError(located(where, "", f"a spec must be a mapping of keys to values, got a {kind}"))
    locations: dict[KeyPath, Location] = {(): _mark_location(source, node.start_mark)}
    _collect_locations(node, (), source, locations)
    return LocatedMapping(data, locations, source)


def _check_size(root: yaml.Node, source: str) -> None:
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SpecError(
                located(
                    _mark_location(source, root.start_mark),
                    "",
                    f"the spec has more than {MAX_NODES} YAML nodes; specs are small files",
                )
            )
        if isinstance(node, yaml.MappingNode):
            stack.extend(value for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _collect_locations(node: yaml.Node, path: KeyPath, source: str, out: dict[KeyPath, Location]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            where = _mark_location(source, key_node.start_mark)
            if key in seen:
                raise SpecError(
                    located(where, format_path((*path, key)), f"duplicate key (first given at line {seen[key].line})")
                )
            seen[key] = where
            out[(*path, key)] = where
            _collect_locations(value_node, (*path, key), source, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, index)] = _mark_location(source, item.start_mark)
            _collect_locations(item, (*path, index), source, out)


def read_yaml_file(path: Path, label: str) -> LocatedMapping:
    """Read and parse a spec file, turning OS and encoding problems into SpecErrors."""
    try:
        if path.is_dir():
            raise SpecError(located(Location(label), "", "is a folder, not a spec file"))
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(
                located(Location(label), "", f"file is {size} bytes; specs are limited to {MAX_SPEC_BYTES}")
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(located(Location(label), "", "no such file")) from None
    except OSError as exc:
        raise SpecError(located(Location(label), "", f"cannot read: {exc.strerror}")) from None
    if b"\x00" in raw:
        raise SpecError(located(Location(label), "", "is a binary file, not a YAML spec"))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(located(Location(label, line), "", "is not valid UTF-8 text; save the spec as UTF-8")) from None
    return parse_yaml(text, label)
