"""Training experiments end to end on the bundled digits with tiny budgets: the degradation
experiment (He et al. 2015 Fig. 1 / 6) and an ablation of the shortcut type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from resnet_gen import build, load_spec
from resnet_gen.analyses.experiments import Experiment, Run, ablation, fit_to_data, parse_vary
from resnet_gen.analyses.figures import degradation_figure
from resnet_gen.cli import main
from resnet_gen.errors import SpecError
from resnet_gen.train import load_checkpoint

ONE_BLOCK = [item for i in range(3) for item in ("--set", f"stages[{i}].blocks=1")]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_degradation_trains_each_net_with_one_recipe_and_plots_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["experiment", "degradation", "--data", "digits", "--epochs", "1", "-o", str(tmp_path)]
    main([*args, "--spec", "cifar_plain20", "--spec", "cifar_resnet20", *ONE_BLOCK])
    out = capsys.readouterr().out
    assert "cifar_plain20" in out and "cifar_resnet20" in out and "test error" in out
    numbers = json.loads((tmp_path / "degradation.json").read_text())
    assert numbers["kind"] == "degradation" and numbers["data"] == "digits"
    runs = {run["spec"]: run for run in numbers["runs"]}
    assert (runs["cifar_plain20"]["residual"], runs["cifar_resnet20"]["residual"]) == (False, True)
    for name, run in runs.items():
        assert run["epochs"] == [1]
        assert all(0.0 <= error <= 1.0 for error in run["train_error"] + run["test_error"])
        # Each run is a training run of its own, fitted to the 8x8 greyscale digits.
        checkpoint = load_checkpoint(tmp_path / name / "last.ckpt")
        assert (checkpoint.spec.input.channels, checkpoint.spec.input.hw) == (1, (8, 8))
        assert run["params"] == sum(p.numel() for p in build(checkpoint.spec).parameters())
    csv_lines = (tmp_path / "degradation.csv").read_text().splitlines()
    assert csv_lines[0] == "run,epoch,train_error,test_error" and len(csv_lines) == 3
    assert (tmp_path / "degradation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "degradation.svg").read_text().startswith("<?xml")


def test_degradation_figure_puts_plain_nets_left_and_residual_nets_right() -> None:
    def made(label: str, residual: bool) -> Run:
        return Run(label, label, residual, 1, 3, None, (1, 2), (0.5, 0.4), (0.6, 0.5))

    experiment = Experiment("degradation", "digits", "digits", (made("plain-a", False), made("res-a", True)))
    left, right = degradation_figure(experiment).axes
    assert (left.get_title(), right.get_title()) == ("plain nets on digits", "residual nets on digits")
    # Bold test error and dashed training error per run, in percent.
    (test_line, train_line) = left.get_lines()
    assert list(test_line.get_ydata()) == [60.0, 50.0] and train_line.get_linestyle() == "--"
    assert [text.get_text() for text in right.get_legend().get_texts()] == ["res-a test", "res-a train"]


def test_ablation_trains_every_value_of_the_varied_field(tmp_path: Path) -> None:
    overrides = [f"stages[{i}].blocks=1" for i in range(3)]
    result = ablation(
        "cifar_resnet20",
        ["shortcut.type=A,B"],
        "digits",
        out=tmp_path,
        overrides=overrides,
        options={"epochs": 1},
    )
    assert [run.label for run in result.runs] == ["shortcut.type=A", "shortcut.type=B"]
    # Option B adds two projection convs and their norms: more parameters than option A's none.
    for run, kind in zip(result.runs, ("A", "B"), strict=True):
        spec = load_spec("cifar_resnet20", [*overrides, f"shortcut.type={kind}", "input.size=8", "input.channels=1"])
        assert run.params == sum(p.numel() for p in build(spec).parameters())
        assert Path(run.out or "").joinpath("last.ckpt").is_file()
    assert result.runs[1].params > result.runs[0].params


def test_fit_to_data_sets_only_what_differs() -> None:
    spec = fit_to_data("cifar_resnet20", "digits")
    assert (spec.input.channels, spec.input.hw, spec.head.num_classes if spec.head else None) == (1, (8, 8), 10)
    kept = fit_to_data("cifar_resnet20", "synthetic:8")
    assert kept.input.hw == load_spec("cifar_resnet20").input.hw


def test_bad_vary_and_unknown_fields_fail_before_any_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SpecError, match=r"--vary shortcut.type: expected FIELD=VALUE,VALUE"):
        parse_vary(["shortcut.type"])
    assert parse_vary(["block.order=post, pre"]) == [("block.order", ["post", "pre"])]
    with pytest.raises(SystemExit) as exit:
        main(
            [
                "experiment",
                "ablation",
                "cifar_resnet20",
                "--vary",
                "shortcut.typo=A,B",
                "--data",
                "digits",
                "-o",
                str(tmp_path),
            ]
        )
    assert exit.value.code == 1
    error = capsys.readouterr().err.strip()
    assert "shortcut.typo" in error and error.count("\n") == 0
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit) as exit:
        main(["experiment", "degradation", "-o", str(tmp_path)])
    assert exit.value.code == 2  # --data is required
