"""Read one YAML file safely, remembering the line and column of every key."""

from __future__ import annotations

import functools
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's parser, which PyYAML's wheels ship
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    CParser = None  # type: ignore[assignment,misc]

from ..errors import Location, SpecError, located

KeyPath = tuple[str | int, ...]

# Specs are a few hundred bytes; anything this big is a mistake or an attack.
MAX_SPEC_BYTES = 1_000_000
MAX_NODES = 20_000
MAX_DEPTH = 32  # nesting levels; the deepest real spec has four
MAX_NUMBER_DIGITS = 40  # longer integers are typos or attacks (and Python refuses > 4300 digits)

# Tags a spec may spell out; everything else (!!python/object, !!binary, !!set, custom tags) is refused.
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "seq", "map"))

# What PyYAML's Python reader refuses up front, with its own message.
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
# Where libyaml reads text differently from PyYAML's Python scanner (found by comparing the two on
# random text; tests/test_yaml_parsers.py keeps doing so): tabs, byte-order marks and Unicode line
# breaks inside the text, '?' in flow collections, tags ('!' alone reads as null in one, '' in the
# other), and '#' straight after a block scalar's indicator.
_SCANNERS_DIFFER = re.compile(r"[\t\ufeff\x85\u2028\u2029?!]|[|>][-+0-9]*#")

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
    ("found an escape code past U+10FFFF", "write \\U and eight hex digits up to 0010FFFF, or the character itself"),
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

    def copy(self) -> LocatedMapping:
        """A copy whose data can be changed without touching this one (locations are immutable)."""
        return LocatedMapping(_copy_plain(self.data), dict(self.locations), self.source)


def _copy_plain(value: Any) -> Any:
    """Deep copy of parsed YAML: dicts and lists of immutable scalars (a few times faster than
    ``copy.deepcopy``, which matters when every spec copies its parents)."""
    if isinstance(value, dict):
        return {key: _copy_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_plain(item) for item in value]
    return value


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


class _PlainDataRules(yaml.composer.Composer, yaml.constructor.SafeConstructor):
    """What a spec's YAML may hold: plain data only. Mixed into a loader, it refuses, before
    anything is constructed: anchors and aliases (the vector of exponential-expansion, "billion
    laughs", attacks; specs never need them), explicit tags other than the plain ones
    (``!!python/object`` and friends), merge keys, and nesting deeper than ``MAX_DEPTH`` (which
    would exhaust Python's stack). The checks live in PyYAML's Python composer, whichever parser
    feeds it events."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
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
        value = super().construct_yaml_int(node)
        _refuse_surprising_number(node, value)
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        _refuse_surprising_number(node, value)
        return value

    def construct_plain_text(self, node: yaml.ScalarNode) -> str:
        # An unquoted date stays the text it is; specs have no date fields.
        return str(node.value)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError, IndexError, OverflowError):
            # PyYAML's constructors fail this way on an explicit tag its text does not fit (!!int "two").
            if not isinstance(node, yaml.ScalarNode):
                raise
            text = node.value if len(node.value) <= 40 else node.value[:40] + "..."
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{text!r} is not a valid {_short_tag(node.tag)}; drop the tag or fix the value",
                node.start_mark,
            ) from None


# Registered on the mixin, so both loaders below find them first. (The stubs only know full loaders.)
_PlainDataRules.add_constructor("tag:yaml.org,2002:int", _PlainDataRules.construct_yaml_int)  # type: ignore[type-var]
_PlainDataRules.add_constructor("tag:yaml.org,2002:float", _PlainDataRules.construct_yaml_float)  # type: ignore[type-var]
_PlainDataRules.add_constructor("tag:yaml.org,2002:timestamp", _PlainDataRules.construct_plain_text)  # type: ignore[type-var]


class _NoAliasSafeLoader(_PlainDataRules, yaml.SafeLoader):
    """The reference loader, all Python: its messages are the ones users see."""

    def scan_flow_scalar_non_spaces(self, double: bool, start_mark: yaml.Mark) -> list[str]:
        try:
            return super().scan_flow_scalar_non_spaces(double, start_mark)
        except (ValueError, OverflowError):  # PyYAML's scanner passes "\U00110000" to chr()
            raise yaml.MarkedYAMLError(
                "while scanning a double-quoted scalar",
                start_mark,
                "found an escape code past U+10FFFF, the last Unicode character",
                self.get_mark(),
            ) from None


_FastLoader: type[_PlainDataRules] | None = None
if CParser is not None:

    class _CParsedLoader(_PlainDataRules, CParser, yaml.resolver.Resolver):
        """The same rules on events from libyaml's parser, several times faster than PyYAML's
        Python scanner. Composer, constructor and resolver stay PyYAML's Python ones (the composer
        comes before libyaml's in the method order), so nodes, values and marks are the reference
        loader's."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _FastLoader = _CParsedLoader


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


_OCTAL = re.compile(r"[-+]?0[0-7_]+")


def _refuse_surprising_number(node: yaml.ScalarNode, value: float) -> None:
    """YAML 1.1 reads ``017`` as octal 15 and ``1:30`` as base-60 90; nobody writing a spec means
    either, so both are errors that say what was read (hex ``0x1f`` and binary ``0b101`` say so)."""
    text = node.value.replace("_", "")
    shown = int(value) if float(value).is_integer() else value
    if ":" in text:
        problem = f"{node.value!r} reads as the base-60 number {shown} in YAML 1.1; write {shown} if that is meant"
    elif _OCTAL.fullmatch(text):
        sign = "-" if text.startswith("-") else ""
        decimal = sign + (text.lstrip("+-").lstrip("0") or "0")
        problem = (
            f"{node.value!r} reads as the octal number {shown} in YAML 1.1, not {decimal}; "
            "write the number without leading zeros"
        )
    else:
        return
    raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def load_plain_value(text: str) -> Any:
    """One YAML value (as given to ``--set``) under the same rules as a spec file."""
    loader = _NoAliasSafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        bad = _bad_key(node, repeats=True)
        if bad is not None:  # what a file's keys may not be, a value's may not be either
            raise yaml.constructor.ConstructorError(None, None, bad[1], bad[0].start_mark)
        return loader.construct_document(node)
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
    """Parse spec text into a mapping with locations; every failure is a located SpecError.

    Results are cached by text and source name, so a parent spec shared by many children (the
    catalog's resnet50, say) is parsed once per process; each caller gets its own copy."""
    return _parse_cached(text, source).copy()


@functools.lru_cache(maxsize=256)
def _parse_cached(text: str, source: str) -> LocatedMapping:
    if _FastLoader is not None and _fast_path_applies(text):
        try:
            return _parse_with(_FastLoader, text, source)
        except SpecError:
            pass  # libyaml words its errors differently: the reference loader says what is wrong
    return _parse_with(_NoAliasSafeLoader, text, source)


def _fast_path_applies(text: str) -> bool:
    """Whether libyaml reads ``text`` as PyYAML's Python scanner would: the text has none of the
    constructs where they differ, and no character the Python reader refuses up front."""
    return _NON_PRINTABLE.search(text) is None and _SCANNERS_DIFFER.search(text) is None


def _parse_with(loader_class: type[_PlainDataRules], text: str, source: str) -> LocatedMapping:
    try:
        loader = loader_class(text)  # type: ignore[call-arg]
    except yaml.YAMLError as exc:  # the Python reader checks every character up front
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
        loader.dispose()  # type: ignore[attr-defined]
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
    bad = _bad_key(root)
    if bad is not None:
        raise SpecError(located(_mark_location(source, bad[0].start_mark), "", bad[1]))


def _bad_key(root: yaml.Node, *, repeats: bool = False) -> tuple[yaml.Node, str] | None:
    """The first mapping key that is not a plain string (a merge key '<<', a number, a null, a
    list), or with ``repeats`` one that repeats a key of its mapping, and what is wrong with it;
    None when all are fine. (In files, repeats are found with their locations, later.)"""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag != "tag:yaml.org,2002:str" or not isinstance(key_node, yaml.ScalarNode):
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        problem = "the merge key '<<' is not allowed; write the keys out"
                    elif isinstance(key_node, yaml.ScalarNode):
                        problem = f"{key_node.value!r} is not a valid key; keys are names such as 'stages'"
                    else:
                        problem = "a list or mapping is not a valid key; keys are names such as 'stages'"
                    return key_node, problem
                if repeats and key_node.value in seen:
                    return key_node, f"the key {key_node.value!r} is given twice; keep one"
                seen.add(key_node.value)
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return None


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
        if path.is_symlink():
            raise SpecError(
                located(Location(label), "", f"no such file ({path.name} is a link to it); check the link")
            ) from None
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
