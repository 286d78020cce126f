"""Property-based tests over names and paths (random unicode, lone surrogates, NUL bytes, path
separators, names past the system's limits, symbolic links that loop, dangle or lead outside):
the loader and the output policy answer each with a spec, a written file, or a SpecError of
one-line problems; never another exception, never a temporary left behind, never the content of
a file outside the spec's folder. Profiles as in test_properties.py (RESNET_GEN_HYPOTHESIS=long)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resnet_gen as rg
from resnet_gen import files

settings.register_profile(
    "ci", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
PROFILE = settings.get_profile(os.environ.get("RESNET_GEN_HYPOTHESIS", "ci"))

SECRET = "the content of a file outside the spec's folder"

# Any code point (surrogates included), the characters paths are made of, and lengths past
# NAME_MAX (255 bytes) and PATH_MAX (4096).
ANY_CHAR = st.characters(blacklist_categories=())
PATH_CHAR = st.sampled_from(["/", ".", "..", "\x00", "\\", "~", " ", "\n", "a", "é", "\U0001f600", "resnet18", ".yaml"])
NAMES = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.lists(PATH_CHAR, max_size=12).map("".join),
    st.integers(200, 5000).map(lambda n: "a" * n),
    st.integers(60, 1200).map(lambda n: "d/" * n + "x.yaml"),
)


@contextlib.contextmanager
def _folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "outside.yaml").write_text(f"secret: {SECRET}\n")
        (root / "work").mkdir()
        yield root / "work"


def _one_line_problems(error: rg.SpecError) -> None:
    assert error.problems
    for problem in error.problems:
        assert "\n" not in problem and "\r" not in problem and SECRET not in problem


@PROFILE
@given(name=NAMES)
def test_any_name_on_the_command_line_loads_or_is_one_line(name: str) -> None:
    try:
        rg.load_spec(name)
    except rg.SpecError as error:
        _one_line_problems(error)


@PROFILE
@given(parent=NAMES)
def test_any_extends_loads_or_is_one_line(parent: str) -> None:
    with _folder() as work:
        (work / "outside_link.yaml").symlink_to("../outside.yaml")
        spec = work / "child.yaml"
        spec.write_text(yaml.safe_dump({"extends": parent}), encoding="utf-8")
        try:
            rg.load_spec(spec)
        except rg.SpecError as error:
            _one_line_problems(error)


LINK_NAMES = st.sampled_from(["a", "b", "c.yaml", "d.yml", "sub/e.yaml"])
TARGETS = st.sampled_from(
    ["a", "b", "c.yaml", "d.yml", "sub/e.yaml", "../outside.yaml", "missing.yaml", "sub", ".", "/dev/null", "net.yaml"]
)


@PROFILE
@given(links=st.dictionaries(LINK_NAMES, TARGETS, min_size=1), start=LINK_NAMES, extends=st.booleans())
def test_links_that_loop_dangle_or_lead_outside_are_one_line(links: dict[str, str], start: str, extends: bool) -> None:
    """Each link is loaded, and extended from a spec beside it: a spec, or one-line problems that
    never quote the file outside."""
    with _folder() as work:
        (work / "sub").mkdir()
        (work / "net.yaml").write_text("extends: cifar_resnet20\n")
        for name, target in links.items():
            path = work / name
            if not path.exists() and not path.is_symlink():
                path.symlink_to(target if not target.startswith("../") else "../" * name.count("/") + target)
        source = work / start
        if extends:
            source = work / "child.yaml"
            source.write_text(yaml.safe_dump({"extends": start.removesuffix(".yaml")}), encoding="utf-8")
        try:
            rg.load_spec(source)
        except rg.SpecError as error:
            _one_line_problems(error)


@PROFILE
@given(name=NAMES, data=st.binary(max_size=64))
def test_any_output_name_is_written_whole_or_is_one_line(name: str, data: bytes) -> None:
    """The output policy on any name: the file holds exactly the data afterwards, or nothing
    changed; no temporary is ever left in the folder."""
    with _folder() as work:
        before = sorted(p.name for p in work.rglob("*"))
        target = work / name
        try:
            files.output_folder(target.parent)
            written = files.write_output(target, data, force=True)
        except rg.SpecError as error:
            _one_line_problems(error)
            assert sorted(p.name for p in work.rglob("*") if p.is_file()) == [n for n in before if (work / n).is_file()]
            return
        assert written is True or target.read_bytes() == data
        assert files.target_of(target).read_bytes() == data
        assert [p for p in work.rglob("*") if p.name.endswith(".tmp")] == []
