"""Output that cannot be turned against its users: hostile spec text is refused or stays inert,
files are written atomically (a failure leaves the previous output untouched), unwritable output
folders give one clear line, and everything written is byte-identical from run to run."""

from __future__ import annotations

import errno
import html
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import VENV_BIN, cli_env

import resnet_gen as rg
from resnet_gen import files
from resnet_gen.cli import main
from resnet_gen.diagram import render

# --- hostile names and descriptions ---------------------------------------------------------------

HOSTILE_NAMES = [
    "x'); __import__('os').system('echo pwned') #",
    "__import__('os').system('id')",
    'resnet"\nimport os',
    "a\nb",
    "class",
    "None",
    "lambda",
    "resn\u0435t",  # Cyrillic e
    "\uff52\uff45\uff53\uff4e\uff45\uff54",  # fullwidth "resnet", NFKC-normalised to ASCII by Python
    "\ufb01le",  # the fi ligature, also NFKC-normalised
    "resnet\u200b50",  # zero-width space
    "50resnet",
    "res-net",
    "",
    "x" * 81,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_hostile_names_are_refused_at_the_name_key(name: str) -> None:
    with pytest.raises(rg.SpecError) as caught:
        rg.load_spec("resnet18", overrides={"name": name})
    (line,) = caught.value.problems
    assert line.startswith("overrides: name: ")  # the overrides= mapping, not the command line
    assert "\n" not in line


HOSTILE_TEXT = [
    '"""; __import__(\'os\').system(\'echo pwned\'); """',
    "''' + __import__('os').popen('id').read() + '''",
    "</text></svg><script>alert(1)</script>",
    '"]; evil [label="pwned"]; x [label="',
    "<b>bold</b> & <<html>> {braces} \\N{BELL} %s {0}",
    "résumé — naïve ∑ ≠ 𝔣",
    "if True: import os",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT, ids=repr)
def test_hostile_descriptions_stay_text_in_diagrams(text: str) -> None:
    """The graph drawn for a hostile description has exactly the nodes and edges of a plain one,
    and the description shows up as text (escaped), never as markup or DOT statements."""
    benign = rg.load_spec("cifar_resnet20", overrides={"description": "plain words"})
    hostile = rg.load_spec("cifar_resnet20", overrides={"description": text, "family": text[:40]})
    assert hostile.description == " ".join(text.split())
    svg_benign = render(rg.diagram(benign), "svg").decode("utf-8")
    svg_hostile = render(rg.diagram(hostile), "svg").decode("utf-8")
    titles = re.compile(r"<title>(.*?)</title>")
    assert titles.findall(svg_hostile) == titles.findall(svg_benign)
    assert "<script" not in svg_hostile
    shown = " ".join(html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg_hostile, re.S))
    assert hostile.description in shown


def test_text_with_control_or_invisible_characters_is_refused() -> None:
    for text in ["ring \x07", "nul \x00 byte", "escape \x1b[31m", "right-to-left \u202e", "zero\u200bwidth"]:
        with pytest.raises(rg.SpecError, match=r"^overrides: description: contains the invisible character U\+"):
            rg.load_spec("resnet18", overrides={"description": text})


# --- atomic writes ----------------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "out.txt"
    files.write_text_atomic(target, "first\n")
    files.write_text_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    assert _leftovers(target.parent) == []
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_previous_file_untouched(
    failure: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model.py"
    target.write_text("previous\n")

    def fail(*args: object) -> None:
        raise failure

    monkeypatch.setattr(os, "replace", fail)
    expected: type[BaseException] = rg.SpecError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as caught:
        files.write_text_atomic(target, "half of a new file")
    assert target.read_text() == "previous\n"
    assert _leftovers(tmp_path) == []
    if isinstance(caught.value, rg.SpecError):
        assert caught.value.problems == (f"{target}: cannot write: No space left on device",)


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.EACCES, "Permission denied"), (errno.EROFS, "Read-only file system")],
)
def test_unwritable_folders_give_one_clear_line(
    code: int, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated, because the tests may run as root, for whom chmod does not make a folder read-only."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(code, words)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(rg.SpecError) as caught:
        files.write_text_atomic(tmp_path / "out" / "x.svg", "data")
    assert caught.value.problems == (
        f"{tmp_path / 'out'}: cannot write output here: {words}; choose another folder with -o",
    )


def test_an_output_folder_that_is_a_file_gives_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "generated"
    blocker.write_text("not a folder")
    with pytest.raises(rg.SpecError) as caught:
        files.write_text_atomic(blocker / "resnet18.svg", "data")
    (line,) = caught.value.problems
    assert line.startswith(f"{blocker}: cannot write output here: ")
    assert blocker.read_text() == "not a folder"


# --- the diagram command's files ------------------------------------------------------------------


def test_diagram_into_an_unusable_folder_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "figures"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(SystemExit) as exited:
        main(["diagram", "resnet18", "--format", "dot", "-o", str(blocker / "sub")])
    out, err = capsys.readouterr()
    assert out == ""
    assert exited.value.code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {blocker / 'sub'}: cannot write output here: "), err
    assert "Traceback" not in err


def test_a_failed_diagram_run_leaves_earlier_output_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figs"
    main(["diagram", "cifar_resnet20", "--format", "dot", "-o", str(out)])
    drawn = (out / "cifar_resnet20.dot").read_bytes()
    (out / "broken.dot").write_text("an earlier drawing\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("extends: cifar_resnet20\nstages: [{blocks: 0, width: 16}]\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["diagram", str(broken), "--format", "dot", "-o", str(out)])
    assert exited.value.code == 1
    assert (out / "broken.dot").read_text() == "an earlier drawing\n"
    assert (out / "cifar_resnet20.dot").read_bytes() == drawn
    assert _leftovers(out) == []


# --- determinism ----------------------------------------------------------------------------------


def _diagrams(folder: Path, seed: str) -> dict[str, bytes]:
    env = cli_env() | {"PYTHONHASHSEED": seed}
    for view in ("macro", "blocks"):
        for fmt in ("dot", "svg"):
            subprocess.run(
                [
                    str(VENV_BIN / "resnet-gen"),
                    "diagram",
                    "resnet50",
                    "cifar_resnet20",
                    "--view",
                    view,
                    "--format",
                    fmt,
                    "-o",
                    str(folder),
                ],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_diagrams_are_byte_identical_across_runs_and_hash_seeds(tmp_path: Path) -> None:
    first = _diagrams(tmp_path / "a", "0")
    assert len(first) == 8
    assert _diagrams(tmp_path / "b", "12345") == first
    assert _diagrams(tmp_path / "c", "random") == first


# --- checkpoints ----------------------------------------------------------------------------------


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "payload": _RunsCodeWhenUnpickled(marker)}, evil)
    with pytest.raises(SystemExit) as exited:
        main(["weights", "resnet18", str(evil)])
    out, err = capsys.readouterr()
    assert exited.value.code == 1
    assert out == "" and len(err.splitlines()) == 1 and err.startswith(f"error: {evil}: ")
    assert not marker.exists()
