"""The analyze commands as a user meets them: reproducible files, a short table, and bad input
as one line with exit status 1 (bad input) or 2 (bad usage), nothing written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from resnet_gen.cli import main

TINY = [item for i in range(3) for item in ("--set", f"stages[{i}].blocks=1")]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit:
        code = int(exit.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_gradients_writes_byte_identical_files_from_any_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["analyze", "gradients", "cifar_plain20", "cifar_resnet20", *TINY, "--batch", "2", "--seeds", "2"]
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        code, out, err = run([*args, "--points", "4", "-o", "results"], capsys)
        assert code == 0, err
    assert "first/last" in out and "similarity" in out
    names = sorted(os.listdir(tmp_path / "a" / "results"))
    assert names == sorted(
        f"{kind}-cifar_plain20_custom-cifar_resnet20_custom.{ext}"  # --set: named as overridden
        for kind in ("gradients", "shattered")
        for ext in ("csv", "json", "png", "svg")
    )
    for name in names:
        assert (tmp_path / "a" / "results" / name).read_bytes() == (tmp_path / "b" / "results" / name).read_bytes()
    header = (
        (tmp_path / "a" / "results" / "gradients-cifar_plain20_custom-cifar_resnet20_custom.csv")
        .read_text()
        .splitlines()[0]
    )
    assert header == "spec,block,index,mean,low,high"


def test_paths_with_sampled_gradients(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["analyze", "paths", "cifar_resnet20", *TINY, "--samples", "1", "--batch", "2", "-o", str(tmp_path)], capsys
    )
    assert code == 0, err
    assert "3 residual blocks, 8 paths" in out and "90% of the gradient comes from paths of length" in out
    rows = (tmp_path / "paths-cifar_resnet20_custom.csv").read_text().splitlines()
    assert rows[0] == "length,paths,gradient,total" and [row.split(",")[1] for row in rows[1:]] == ["1", "3", "3", "1"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["analyze", "gradients", "cifar_resnet20", "--device", "nowhere"], 1, "--device nowhere: not usable here"),
        (["analyze", "gradients", "cifar_resnet20", "--set", "head.num_classes=0"], 1, "need a classifier head"),
        (["analyze", "gradients", "no_such_spec"], 1, "no_such_spec"),
        (["analyze", "gradients", "cifar_resnet20", "cifar_plain20", "--checkpoint", "x.ckpt"], 2, "exactly one SPEC"),
        (["analyze", "gradients", "cifar_resnet20", "--data", "cifar10:/no/such/folder"], 1, "/no/such/folder"),
        (["analyze", "paths", "cifar_resnet20", "--samples", "-1"], 2, "--samples"),
        (["analyze", "responses", "cifar_resnet20", "a.ckpt", "cifar_plain20"], 2, "SPEC CHECKPOINT pairs"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    args: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    status, _, err = run([*args, *TINY, "-o", str(out_dir)], capsys)
    assert status == code
    assert message in err and err.strip().count("\n") == 0, err
    assert not out_dir.exists()


def test_an_output_folder_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("")
    status, _, err = run(["analyze", "paths", "cifar_resnet20", "--samples", "0", "-o", str(blocker)], capsys)
    assert status == 2 and "is a file" in err and str(blocker) in err and err.strip().count("\n") == 0
    # Below a file: found before any work starts, exit 1.
    for args in (["analyze", "gradients", "cifar_resnet20"], ["experiment", "degradation", "--data", "digits"]):
        status, _, err = run([*args, "-o", str(blocker / "sub")], capsys)
        assert (
            status == 1
            and err.strip()
            == f"error: {blocker / 'sub'}: cannot write output here: {blocker} is a file; choose another folder with -o"
        )
    assert blocker.read_text() == ""


def test_the_readme_shows_committed_figures_that_make_experiments_writes() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    section = readme.split("\n## Experiments\n", 1)[1].split("\n## ", 1)[0]
    figures = re.findall(r"!\[[^\]]+\]\((docs/experiments/[^)]+\.png)\)", section)
    assert len(figures) == 7
    makefile = (root / "Makefile").read_text()
    for figure in figures:
        assert (root / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
        # Written by an analyze command into $(FIGURES), or copied there from an experiment's folder.
        # (analyze gradients writes the shattered-gradients figure too.)
        stem = Path(figure).stem
        command = {"shattered": "gradients"}.get(stem.split("-")[0], stem.split("-")[0])
        assert f"resnet-gen analyze {command}" in makefile or f"{stem}.png $(FIGURES)/" in makefile
