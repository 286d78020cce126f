"""The broken-spec corpus (tests/bad_specs): every case gives exactly its expected located message,
from the Python API (one SpecError) and from `resnet-gen validate` (exit 1, one line per problem on
stderr, nothing on stdout, never a traceback)."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import VENV_BIN, cli_env

import resnet_gen as rg
from resnet_gen.cli import main
from resnet_gen.unet import load_unet_and_plan

CORPUS = Path(__file__).resolve().parent / "bad_specs"
TEN_MB = 10 * 1024 * 1024


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


@dataclass(frozen=True)
class Link:
    """A symbolic link to ``target`` (relative to the link's folder), written at test time since
    a committed link would not survive every checkout, and a link loop would stop copytree."""

    target: str


def _many_unknown_keys() -> bytes:
    return b"stages: [{blocks: 1, width: 8}]\n" + b"".join(b"k%d: 1\n" % index for index in range(9_990))


# Cases whose files are written at test time rather than committed: name -> content
# (bytes for a file, "dir" for a folder, a Link, None for no file at all).
GENERATED: dict[str, Callable[[], bytes | str | Link | None]] = {
    "file_binary": _png,
    "file_latin1": lambda: "name: café\nstages: [{blocks: 1, width: 8}]\n".encode("latin-1"),
    "file_utf16": lambda: "stages: [{blocks: 1, width: 8}]\n".encode("utf-16"),
    "file_control_char": lambda: b"stages: [{blocks: 1, width: 8}]\ndescription: ring \x07 the bell\n",
    "file_10mb": lambda: b"stages: [{blocks: 1, width: 8}]\n" + b"# padding\n" * (TEN_MB // 10),
    "file_missing": lambda: None,
    "file_folder": lambda: "dir",
    "attack_deep_nesting": lambda: b"stages: " + b"[" * 500 + b"]" * 500 + b"\n",
    "attack_huge_integer": lambda: b"stages:\n  - {blocks: " + b"9" * 5000 + b", width: 8}\n",
    "path_symlink_loop": lambda: Link("path_symlink_loop.yaml"),
    "path_dangling_symlink": lambda: Link("no_such_target.yaml"),
    "key_ten_thousand_unknown": _many_unknown_keys,
}

# Files the cases point at, written next to (or above) the copy: path -> content.
HELPERS: dict[str, bytes | Link] = {
    "loop_link.yaml": Link("loop_link.yaml"),
    "../outside_secret.yaml": b"secret: the content of a file outside the corpus\n",
    "secret_sibling.yaml": Link("../outside_secret.yaml"),
}


def _case_names() -> list[str]:
    return sorted(path.stem for path in CORPUS.glob("*.expected"))


CASES = _case_names()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the corpus with the generated files written in, so messages name `NAME.yaml`."""
    folder = tmp_path_factory.mktemp("corpus") / "bad_specs"
    shutil.copytree(CORPUS, folder)
    files: dict[str, bytes | str | Link | None] = {f"{name}.yaml": make() for name, make in GENERATED.items()}
    for relative, content in {**files, **HELPERS}.items():
        target = folder / relative
        if content == "dir":
            target.mkdir()
        elif isinstance(content, bytes):
            target.write_bytes(content)
        elif isinstance(content, Link):
            target.symlink_to(content.target)
    return folder


def _overrides(name: str) -> list[str]:
    path = CORPUS / f"{name}.set"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _expected(name: str) -> list[str]:
    return (CORPUS / f"{name}.expected").read_text(encoding="utf-8").splitlines()


def test_corpus_is_complete() -> None:
    """Every case has its spec and its expected message; the corpus covers at least 60 cases."""
    specs = {path.stem for path in CORPUS.glob("*.yaml")} | set(GENERATED)
    expected = set(CASES)
    assert specs == expected, f"spec without .expected: {specs - expected}; .expected without spec: {expected - specs}"
    assert {path.stem for path in CORPUS.glob("*.set")} <= expected
    assert len(CASES) >= 60
    for name in CASES:
        lines = _expected(name)
        assert lines and all(lines), name


@pytest.mark.parametrize("name", CASES)
def test_python_api_raises_located_spec_error(name: str, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(corpus)
    with pytest.raises(rg.SpecError) as caught:
        if name.startswith("unet_"):  # U-Net specs load through their own function (rg.load_spec refuses them)
            load_unet_and_plan(f"{name}.yaml", overrides=_overrides(name))
        else:
            rg.analyze(rg.load_spec(f"{name}.yaml", overrides=_overrides(name)))
    assert list(caught.value.problems) == _expected(name)
    assert str(caught.value) == "\n".join(_expected(name))


@pytest.mark.parametrize("name", CASES)
def test_cli_prints_the_same_lines_and_exits_1(
    name: str, corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(corpus)
    argv = ["validate", f"{name}.yaml"]
    for item in _overrides(name):
        argv += ["--set", item]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert exited.value.code == 1
    assert out == ""
    assert err.splitlines() == [f"error: {line}" for line in _expected(name)]


def test_console_script_over_the_whole_corpus(corpus: Path) -> None:
    """The installed `resnet-gen` in a real process: every case without --set in one run (each
    prints its own lines, in order), then each --set case on its own. No traceback anywhere."""
    plain = [name for name in CASES if not _overrides(name)]
    run = subprocess.run(
        [str(VENV_BIN / "resnet-gen"), "validate", *(f"{name}.yaml" for name in plain)],
        cwd=corpus,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [f"error: {line}" for name in plain for line in _expected(name)]
    for name in CASES:
        if not _overrides(name):
            continue
        argv = [str(VENV_BIN / "resnet-gen"), "validate", f"{name}.yaml"]
        for item in _overrides(name):
            argv += ["--set", item]
        one = subprocess.run(argv, cwd=corpus, env=cli_env(), capture_output=True, text=True, timeout=60, check=False)
        assert (one.returncode, one.stdout) == (1, ""), name
        assert one.stderr.splitlines() == [f"error: {line}" for line in _expected(name)], name
        assert "Traceback" not in one.stderr


ABSURD = {
    "a billion blocks": {"stages": [{"blocks": 1_000_000_000, "width": 64}]},
    "width 2**40": {"stages": [{"blocks": 2, "width": 2**40}]},
    "16 stages of 10,000 blocks": {"stages": [{"blocks": 10_000, "width": 64}] * 16},
    "input of 2**40 pixels": {"input": {"size": 2**40}, "stages": [{"blocks": 1, "width": 8}]},
    "2**40 classes": {"head": {"num_classes": 2**40}, "stages": [{"blocks": 1, "width": 8}]},
    "4 million channels": {
        "block": {"type": "bottleneck", "expansion": 64},
        "stages": [{"blocks": 1, "width": 65_536}],
    },
}


@pytest.mark.parametrize("label", sorted(ABSURD))
def test_absurd_sizes_fail_fast_without_allocating(label: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused by validation, before anything is lowered or built: without allocating more than a
    few MB (a lowered 160,000-block net would take GBs). Speed lives in benchmarks/, not here."""
    import yaml

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "absurd.yaml"
    path.write_text(yaml.safe_dump(ABSURD[label]), encoding="utf-8")
    rg.load_spec("resnet18")  # warm imports and pydantic's validators
    tracemalloc.start()
    with pytest.raises(rg.SpecError) as caught:
        rg.analyze(rg.load_spec(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith("absurd.yaml:")
    assert peak < 4 * 1024 * 1024, f"{label}: {peak:,} bytes"


def test_a_10mb_spec_is_refused_without_reading_it(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(corpus)
    tracemalloc.start()
    with pytest.raises(rg.SpecError):
        rg.load_spec("file_10mb.yaml")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1024 * 1024


def test_special_files_are_refused_without_reading_them() -> None:
    """/dev/zero never ends: reading it would hang; it is refused as not a regular file."""
    with pytest.raises(rg.SpecError, match=r"^/dev/zero: is not a regular file; name a \.yaml file$"):
        rg.load_spec("/dev/zero")


def test_billion_laughs_is_refused_before_expansion(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(corpus)
    tracemalloc.start()
    with pytest.raises(rg.SpecError, match="anchors and aliases"):
        rg.load_spec("attack_billion_laughs.yaml")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1024 * 1024


@pytest.mark.parametrize("name", [name for name in CASES if name.startswith("attack_python")])
def test_python_tags_are_never_executed(name: str, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Had any constructor run, os.system / subprocess would have been touched; they are not."""
    import os

    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args) or 0)
    monkeypatch.chdir(corpus)
    with pytest.raises(rg.SpecError, match="is not allowed"):
        rg.load_spec(f"{name}.yaml")
    assert calls == []


USAGE = [
    ["bogus"],
    ["validate", "--bogus"],
    ["info"],
    ["info", "resnet18", "extra"],
    ["list", "--family"],
    ["--no-such-flag"],
    ["new", "../escape", "--from", "resnet50"],
    ["new", "class", "--from", "resnet50"],
]


@pytest.mark.parametrize("argv", USAGE, ids=" ".join)
def test_bad_usage_exits_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage error: ") and lines[0].endswith("--help')"), err


def test_bad_usage_from_the_console_script() -> None:
    run = subprocess.run(
        [str(VENV_BIN / "resnet-gen"), "validate", "--bogux"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr == "usage error: No such option '--bogux'. (see 'resnet-gen validate --help')\n"


SAMPLE = ["yaml_tab_indent", "key_misspelled_stride", "combo_zero_pad_shrinks", "extends_cycle_a", "set_wrong_type"]


@pytest.mark.parametrize(
    "command", [["info"], ["diagram", "--format", "dot", "--stdout"], ["build", "--stdout"]], ids=" ".join
)
@pytest.mark.parametrize("name", SAMPLE)
def test_other_commands_give_the_same_lines(
    name: str, command: list[str], corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(corpus)
    argv = [*command, f"{name}.yaml"]
    for item in _overrides(name):
        argv += ["--set", item]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (1, "")
    assert err.splitlines() == [f"error: {line}" for line in _expected(name)]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("res\x00net", "res\\x00net: contains a NUL byte, which no file name can hold; name a .yaml file"),
        (
            "a" * 300,
            f"{'a' * 60}... (300 characters): has a name longer than the system's limit of 255 bytes; name a .yaml file",
        ),
        (
            "d/" * 2100 + "x.yaml",
            f"{'d/' * 30}... (4,206 characters): is longer than the system's limit of 4,096 bytes for a path; name a .yaml file",
        ),
        (
            "\udcff\ud800.yaml",
            "\\udcff\\ud800.yaml: is not a valid file name (it holds characters the system cannot encode); name a .yaml file",
        ),
    ],
    ids=["NUL", "long name", "long path", "surrogates"],
)
def test_names_the_system_cannot_take_are_one_line(
    name: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file name on the command line that no file can have (a corpus file cannot hold one)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["validate", name])
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (1, "")
    (line,) = err.splitlines()
    assert line == f"error: {message}"
