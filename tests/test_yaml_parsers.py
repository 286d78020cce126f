"""Spec files are parsed with libyaml's parser where it reads text as PyYAML's Python parser does,
and with the Python parser everywhere else and for every error. These tests hold the two to the
same results: the catalog, the broken-spec corpus and random YAML (valid, and mutated into
invalid) each give the reference parser's data, locations and messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnet_gen import catalog
from resnet_gen.errors import SpecError
from resnet_gen.spec import yaml_source

CORPUS = Path(__file__).resolve().parent / "bad_specs"
CATALOG_FILES = sorted(catalog.specs_dir().glob("*.yaml"))


def reference(text: str, source: str = "s.yaml") -> tuple[str, Any, Any]:
    """What PyYAML's Python parser alone makes of ``text``."""
    try:
        mapping = yaml_source._parse_with(yaml_source._NoAliasSafeLoader, text, source)
    except SpecError as exc:
        return ("error", str(exc), None)
    return ("ok", mapping.data, mapping.locations)


def parsed(text: str, source: str = "s.yaml") -> tuple[str, Any, Any]:
    """What the loader the package uses makes of ``text``."""
    try:
        mapping = yaml_source.parse_yaml(text, source)
    except SpecError as exc:
        return ("error", str(exc), None)
    return ("ok", mapping.data, mapping.locations)


def test_catalog_specs_take_the_libyaml_path() -> None:
    """The speed of `resnet-gen validate` depends on it; a spec that falls back is still right."""
    assert yaml_source._FastLoader is not None, "PyYAML without libyaml"
    slow = [path.name for path in CATALOG_FILES if not yaml_source._fast_path_applies(path.read_text("utf-8"))]
    assert slow == []


@pytest.mark.parametrize("path", CATALOG_FILES, ids=lambda path: path.stem)
def test_catalog_spec_parses_as_the_reference_does(path: Path) -> None:
    text = path.read_text("utf-8")
    fast = yaml_source._parse_with(yaml_source._FastLoader, text, path.name)  # type: ignore[arg-type]
    assert ("ok", fast.data, fast.locations) == reference(text, path.name)
    assert parsed(text, path.name) == reference(text, path.name)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yaml")), ids=lambda path: path.stem)
def test_broken_spec_parses_as_the_reference_does(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    assert parsed(text, path.name) == reference(text, path.name)


def test_results_are_copies() -> None:
    """Parsed files are cached; changing one result must not change the next."""
    text = "stages: [{blocks: 1, width: 8}]\nstem: {width: 8}\n"
    first = yaml_source.parse_yaml(text, "s.yaml")
    first.data["stages"][0]["blocks"] = 5
    first.data["stem"]["width"] = 16
    first.locations.clear()
    second = yaml_source.parse_yaml(text, "s.yaml")
    assert second.data == {"stages": [{"blocks": 1, "width": 8}], "stem": {"width": 8}}
    assert second.locations[("stem", "width")].line == 2


# Random YAML: pieces that matter to a YAML scanner, and dumps of random data in every style,
# with pieces inserted and characters deleted.
PIECES = [
    *"ab1 :-[]{},'\"#\n|>.0x\\+e~&*%@`?!\t\r",
    *["  ", "\n  ", "\n    ", ": ", "- ", "\n- ", " #", "#c\n", "\r\n", "---", "...", "%YAML 1.1\n"],
    *["é", "ñ", "\U0001f600", "\u00a0", "\ufeff", "\x85", "\u2028", "|-\n  ", ">\n  ", "|2\n", ">#"],
    *['"\\x41"', '"\\u00e9"', '"\\', "'it''s'", "0x1F", "1e5", "null", "yes", "<<", "=", "!!str ", "&a ", "*a"],
]
SCALARS = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)
DATA = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text("abcé -:#", min_size=1, max_size=5), children, max_size=3),
    ),
    max_leaves=12,
)
PROFILE = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return "".join(draw(st.lists(st.sampled_from(PIECES), max_size=40)))
    data = draw(st.dictionaries(st.text("abc", min_size=1, max_size=3), DATA, min_size=1, max_size=4))
    text = yaml.safe_dump(
        data,
        default_flow_style=draw(st.sampled_from([False, True, None])),
        allow_unicode=draw(st.booleans()),
        width=draw(st.sampled_from([20, 80])),
        default_style=draw(st.sampled_from([None, "'", '"', "|", ">"])),
    )
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:position] + draw(st.sampled_from(PIECES)) + text[position:]
        else:
            text = text[:position] + text[position + 1 :]
    return text


@PROFILE
@given(yaml_texts())
def test_random_yaml_parses_as_the_reference_does(text: str) -> None:
    assert parsed(text) == reference(text)
