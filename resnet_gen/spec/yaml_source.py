"""Read one YAML file safely, remembering the line and column of every key."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Location, SpecError, located

KeyPath = tuple[str | int, ...]

# Specs are a few hundred bytes; anything this big is a mistake or an attack.
MAX_SPEC_BYTES = 1_000_000
MAX_NODES = 20_000
MAX_DEPTH = 32  # nesting levels; the deepest real spec has four
MAX_NUMBER_DIGITS = 40  # longer integers are typos or attacks (and Python refuses > 4300 digits)

# Tags a spec may spell out; everything else (!!python/object, !!binary, !!set, custom tags) is refused.
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map"))

# PyYAML's messages, and what to do about each.
_YAML_HINTS = (
    ("found character '\\t'", "indent with spaces; YAML does not allow tabs"),
    (
        "mapping values are not allowed here",
        "a ':' followed by a space starts a key; quote the value or fix the indentation",
    ),
    ("expected ',' or ']'", "close the list with ']' or separate items with ','"),
    ("expected ',' or '}'", "close the mapping with '}' or separate entries with ','"),
    ("could not find expected ':'", "write each entry as 'key: value'"),
    ("but found another document", "a spec holds one YAML document; remove the '---' line and what follows"),
    ("found unhashable key", "keys are plain names such as 'stages'"),
    ("expected <block end>", "entries of one mapping or list must start in the same column"),
    ("found unexpected end of stream", "close the quoted string"),
    ("found unknown escape character", "use single quotes, or escape the backslash as '\\\\'"),
    ("that cannot start any token", "quote the value"),
    ("expected the node content", "a value is missing here"),
)


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
    """Safe loader for plain data only. It refuses, before anything is constructed: anchors and
    aliases (the vector of exponential-expansion, "billion laughs", attacks; specs never need
    them), explicit tags other than the plain ones (``!!python/object`` and friends), merge keys,
    and nesting deeper than ``MAX_DEPTH`` (which would exhaust Python's stack)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases ('&name', '*name') are not allowed; write the value out",
                event.start_mark,
            )
        tag = getattr(event, "tag", None)
        if tag not in (None, "!") and tag not in _PLAIN_TAGS:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"the YAML tag {_short_tag(tag)} is not allowed; specs hold plain values only",
                event.start_mark,
            )
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested more than {MAX_DEPTH} levels deep; specs are a few levels deep", event.start_mark
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_NUMBER_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"a number with {len(node.value)} digits is out of range", node.start_mark
            )
        return super().construct_yaml_int(node)

    def construct_plain_text(self, node: yaml.ScalarNode) -> str:
        # An unquoted date stays the text it is; specs have no date fields.
        return str(node.value)


_NoAliasSafeLoader.add_constructor("tag:yaml.org,2002:int", _NoAliasSafeLoader.construct_yaml_int)
_NoAliasSafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _NoAliasSafeLoader.construct_plain_text)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def load_plain_value(text: str) -> Any:
    """One YAML value (as given to ``--set``) under the same rules as a spec file."""
    loader = _NoAliasSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(exc: yaml.YAMLError, source: str, text: str) -> str:
    """One located line for any PyYAML error, with what to do about it."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.reader.ReaderError):
        where = Location(source, *_line_col(text, exc.position))
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return located(where, "", f"the control character U+{code:04X} is not allowed in YAML; remove it")
    where = _mark_location(source, mark) if mark is not None else Location(source)
    problem = str(getattr(exc, "problem", None) or getattr(exc, "context", None) or exc).strip()
    problem = " ".join(problem.split())
    hint = next((fix for pattern, fix in _YAML_HINTS if pattern in problem), "")
    opened = getattr(exc, "context_mark", None)
    if hint and opened is not None and mark is not None and opened.line != mark.line:
        hint += f" (it starts at line {opened.line + 1}, column {opened.column + 1})"
    return located(where, "", f"invalid YAML: {problem}" + (f"; {hint}" if hint else ""))


def _line_col(text: str, position: int) -> tuple[int, int]:
    before = text[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def parse_yaml(text: str, source: str) -> LocatedMapping:
    """Parse spec text into a mapping with locations; every failure is a located SpecError."""
    try:
        loader = _NoAliasSafeLoader(text)
    except yaml.YAMLError as exc:  # the reader checks every character up front
        raise SpecError(yaml_problem(exc, source, text)) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError(
                located(Location(source, 1, 1), "", "the spec is empty; give at least 'stages:' or 'extends:'")
            )
        _check_size(node, source)
        _check_keys(node, source)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SpecError(yaml_problem(exc, source, text)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        where = _mark_location(source, node.start_mark)
        kind = "a list" if isinstance(data, list) else "text" if isinstance(data, str) else "a single value"
        raise SpecError(
            located(where, "", f"a spec is a mapping of keys to values (such as 'stages:' or 'extends:'), not {kind}")
        )
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


def _check_keys(root: yaml.Node, source: str) -> None:
    """Every mapping key is a plain string: no merge keys ('<<'), numbers, nulls or lists."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.tag != "tag:yaml.org,2002:str" or not isinstance(key_node, yaml.ScalarNode):
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        problem = "the merge key '<<' is not allowed; write the keys out"
                    elif isinstance(key_node, yaml.ScalarNode):
                        problem = f"{key_node.value!r} is not a valid key; keys are names such as 'stages'"
                    else:
                        problem = "a list or mapping is not a valid key; keys are names such as 'stages'"
                    raise SpecError(located(_mark_location(source, key_node.start_mark), "", problem))
                stack.append(value_node)
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


_TOO_BIG = f"specs are at most {MAX_SPEC_BYTES:,} bytes; a spec is a few lines, usually extending a catalog spec"
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_yaml_file(path: Path, label: str) -> LocatedMapping:
    """Read and parse a spec file, turning OS and encoding problems into SpecErrors."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise SpecError(located(Location(label), "", "is a folder, not a spec file; name a .yaml file"))
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(located(Location(label), "", "is not a regular file; name a .yaml file"))
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecError(located(Location(label), "", f"the file has {info.st_size:,} bytes; {_TOO_BIG}"))
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)  # bounded, in case the file grows while being read
    except FileNotFoundError:
        raise SpecError(located(Location(label), "", "no such file; check the path")) from None
    except OSError as exc:
        raise SpecError(located(Location(label), "", f"cannot read: {exc.strerror}")) from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(located(Location(label), "", f"the file has more than {MAX_SPEC_BYTES:,} bytes; {_TOO_BIG}"))
    if raw.startswith(_UTF16_32_BOMS):
        raise SpecError(located(Location(label, 1, 1), "", "is UTF-16 or UTF-32 text; save the spec as UTF-8"))
    if b"\x00" in raw:
        line, column = _byte_line_col(raw, raw.index(b"\x00"))
        raise SpecError(
            located(Location(label, line, column), "", "contains a NUL byte: this is a binary file, not a YAML spec")
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_line_col(raw, exc.start)
        raise SpecError(
            located(
                Location(label, line, column),
                "",
                f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the spec as UTF-8",
            )
        ) from None
    return parse_yaml(text, label)


def _byte_line_col(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    return before.count(b"\n") + 1, offset - (before.rfind(b"\n") + 1) + 1
