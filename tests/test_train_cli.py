"""``resnet-gen train / evaluate / plot`` from the command line: bad input is one line with exit
status 1 (bad input) or 2 (bad usage) and nothing written; evaluate and plot on a real run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_support import DIGITS_NET, one_thread_env, run_cli

DIGITS = ["train", "cifar_resnet20", "--data", "digits", "-q", *[f"--set={item}" for item in DIGITS_NET]]


def assert_one_line_error(code: int, err: str, status: int, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status, err
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_recipe(path: Path) -> Path:
    path.write_text("extends: digits\noptimizer:\n  lr: 0.1\n  momentun: 0.9\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "status", "fragments"),
    [
        (["train", "cifar_resnet20", "--data", "cifar10:{tmp}/nowhere"], 1, ["{tmp}/nowhere", "no such folder"]),
        (["train", "cifar_resnet20", "--data", "mnist:{tmp}"], 1, ["no train-images-idx3-ubyte", "IDX"]),
        (["train", "cifar_resnet20", "--data", "digits"], 1, ["--set input.channels=1", "--set input.size=8"]),
        ([*DIGITS, "--set=head.num_classes=7"], 1, ["10 classes into a 7-way classifier", "--set head.num_classes=10"]),
        ([*DIGITS, "--set=train.optimizer.lr=-1"], 1, ["--set: train.optimizer.lr", "greater than 0"]),
        ([*DIGITS, "--set=train.amp=fp32"], 1, ["train.amp", "'bf16'"]),
        ([*DIGITS, "--recipe", "cifarr"], 1, ["no recipe file and no preset", "did you mean 'cifar'?"]),
        (
            [*DIGITS, "--recipe", "{tmp}/recipe.yaml"],
            1,
            ["recipe.yaml:4:3: optimizer.momentun", "did you mean 'momentum'"],
        ),
        (["train", "cifar_resnet20"], 2, ["--data is required"]),
        (["train"], 2, ["give a SPEC"]),
        (["train", "--resume", "{tmp}/none.ckpt"], 1, ["none.ckpt: no such checkpoint file"]),
        (["train", "--resume", "{tmp}/junk.ckpt"], 1, ["junk.ckpt: cannot read this checkpoint"]),
        (["train", "--resume", "{tmp}/foreign.ckpt"], 1, ["foreign.ckpt: not a resnet-gen training checkpoint"]),
        (["evaluate", "{tmp}/foreign.ckpt", "--data", "digits"], 1, ["not a resnet-gen training checkpoint"]),
        (["plot", "{tmp}"], 1, ["metrics.jsonl: no such file"]),
        (["plot", "{tmp}/recipe.yaml"], 1, ["not a resnet-gen metrics log"]),
    ],
)
def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], status: int, fragments: list[str]
) -> None:
    write_recipe(tmp_path / "recipe.yaml")
    (tmp_path / "junk.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "foreign.ckpt")
    out = tmp_path / "run"
    before = sorted(tmp_path.iterdir())
    code, _, err = run_cli([a.format(tmp=tmp_path) for a in args] + ["--out", str(out)] * (args[0] == "train"), capsys)
    assert_one_line_error(code, err, status, *[f.format(tmp=tmp_path) for f in fragments])
    assert sorted(tmp_path.iterdir()) == before  # no run folder, no stray files


def test_unwritable_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run folder's parent should be")
    code, _, err = run_cli([*DIGITS, "--max-steps", "1", "--out", str(blocker / "run")], capsys)
    assert_one_line_error(code, err, 1, str(blocker), "choose another run folder with --out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_train_evaluate_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli([*DIGITS, "--epochs", "1", "--batch-size", "128", "--out", str(run)], capsys)
    assert code == 0, err
    assert "finished after 12 steps (1 epochs)" in out
    names = {"spec.yaml", "recipe.yaml", "metrics.jsonl", "last.ckpt", "best.ckpt", "curves.png", "curves.svg"}
    assert names <= {p.name for p in run.iterdir()}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1] and 0 <= rows[0]["val_acc1"] <= 1

    code, out, err = run_cli(["evaluate", str(run / "best.ckpt"), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    confusion = torch.tensor(result["confusion"])
    assert confusion.sum() == result["count"] == 360
    assert result["acc1"] == pytest.approx(float(confusion.diag().sum()) / 360)
    assert result["acc1"] == pytest.approx(rows[0]["val_acc1"])  # the run validated on the same split
    assert (run / "best.confusion.png").exists() and (run / "best.confusion.svg").exists()
    code, out, _ = run_cli(["evaluate", str(run / "best.ckpt")], capsys)
    assert code == 0 and "top-1" in out and "confusion matrix" in out

    curves = (run / "curves.svg").read_bytes(), (run / "curves.png").read_bytes()
    (run / "curves.svg").unlink()
    code, _, err = run_cli(["plot", str(run)], capsys)
    assert code == 0, err
    assert ((run / "curves.svg").read_bytes(), (run / "curves.png").read_bytes()) == curves


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "resnet_gen", *DIGITS, "--epochs", "50", "--no-val", "--out", str(run)]
    process = subprocess.Popen(command, env=one_thread_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (run / "recipe.yaml").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 130, err
    assert f"resume with: resnet-gen train --resume {run / 'last.ckpt'}" in err
    from resnet_gen.train import load_checkpoint

    state = load_checkpoint(run / "last.ckpt").state
    assert state["global_step"] >= 1 and state["epoch"] < 50
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
