"""``info``'s counting options and ``rg.analyze``'s report of them: the per-layer table against the
live module (forward hooks for shapes, its parameters, torch's FlopCounterMode per module), the CLI
against the Python API, bad usage and bad specs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import resnet_gen as rg
from resnet_gen.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "bad_specs"


def _live_modules(spec: rg.Spec) -> tuple[nn.Module, dict[str, tuple[int, ...]], dict[str, int]]:
    """The built module, each called submodule's output shape (batch left out), and its MACs."""
    torch.manual_seed(0)
    model = rg.build(spec).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for path, module in model.named_modules():
        if path:

            def record(_module: nn.Module, _inputs: object, output: torch.Tensor, path: str = path) -> None:
                shapes.setdefault(path, tuple(output.shape[1:]))

            hooks.append(module.register_forward_hook(record))
    x = torch.zeros(1, spec.input.channels, *spec.input.hw)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return model, shapes, module_macs(model, counter)


def module_macs(model: nn.Module, counter: FlopCounterMode) -> dict[str, int]:
    """Each submodule's MACs as FlopCounterMode counted them (its FLOPs halved), by module path."""
    root = type(model).__name__
    return {
        name.removeprefix(f"{root}."): sum(per_op.values()) // 2
        for name, per_op in counter.get_flop_counts().items()
        if name.startswith(f"{root}.")
    }


@pytest.mark.parametrize(
    "name",
    ["resnet18", "resnet50d", "cifar_resnet110_pre", "seresnet50", "resnest14d", "resnetv2_50x1_bit", "resnetblur18"],
)
def test_per_layer_rows_match_the_live_module(name: str) -> None:
    overrides = {"input.size": 64, "drop_path": 0.1} if name.startswith("res") or name.startswith("se") else None
    spec = rg.load_spec(name, overrides)
    model, shapes, macs = _live_modules(spec)
    depth = 3
    rows = rg.analyze(spec).per_layer(depth=depth)
    called = [path for path, _ in model.named_modules() if path in shapes and path.count(".") < depth]
    assert [row.path for row in rows] == called  # every module down to the depth, parents first
    for row in rows:
        module = model.get_submodule(row.path)
        assert row.output_shape == shapes[row.path], row.path
        assert row.params == sum(p.numel() for p in module.parameters()), row.path
        assert row.macs == macs.get(row.path, 0), row.path
        assert row.depth == row.path.count(".") + 1
    top = [row for row in rows if row.depth == 1]
    assert sum(row.share for row in top) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["resnet50_fpn_seg", "resnet18_unet_seg", "medical_resnet18_multitask"])
def test_per_layer_rows_match_the_live_module_with_a_decoder(name: str) -> None:
    """Rows as the modules are registered (a multitask net's head before its decoder, each of a
    U-Net's ModuleLists together though their modules alternate when run); a ModuleList is never
    called itself, so its row sums its children's."""
    spec = rg.load_spec(name, {"input.size": 64})
    model, shapes, macs = _live_modules(spec)
    rows = rg.analyze(spec).per_layer(depth=3)
    assert [row.path for row in rows] == [path for path, _ in model.named_modules() if path and path.count(".") < 3]
    for row in rows:
        module = model.get_submodule(row.path)
        assert row.params == sum(p.numel() for p in module.parameters()), row.path
        if isinstance(module, nn.ModuleList):
            assert row.macs == sum(macs.get(f"{row.path}.{child}", 0) for child, _ in module.named_children())
        else:
            assert row.output_shape == shapes[row.path], row.path
            assert row.macs == macs.get(row.path, 0), row.path
    assert rows[-1].path.startswith("decoder.")  # registered last, after a multitask net's head


def test_per_layer_in_another_convention_sums_to_its_total() -> None:
    report = rg.analyze("resnet34")
    rows = report.per_layer(depth=1, convention="ptflops")
    assert sum(row.macs for row in rows) == report.count("ptflops")
    with pytest.raises(ValueError, match="depth must be 1 or more, not 0"):
        report.per_layer(depth=0)


def test_info_json_gives_the_api_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["info", "seresnet18", "--json", "--count", "fvcore", "--depth", "2", "--batch", "32", "--dtype", "bf16"]
    main([*argv, "--optimizer", "adamw"])
    data = json.loads(capsys.readouterr().out)
    report = rg.analyze("seresnet18")
    assert data["count"] == {"convention": "fvcore", "macs": report.count("fvcore")}
    assert data["activations"] == report.activations
    rows = report.per_layer(depth=2, convention="fvcore")
    assert [(r["path"], r["macs"], r["params"]) for r in data["layers"]] == [(r.path, r.macs, r.params) for r in rows]
    memory = report.memory(batch=32, dtype="bf16", optimizer="adamw")
    assert data["memory"]["bytes"] == dict(memory.rows())
    assert data["memory"]["bytes"]["total"] == sum(value for key, value in memory.rows() if key != "total")


def test_info_json_for_a_decoder_head(capsys: pytest.CaptureFixture[str]) -> None:
    main(["info", "resnet50_fpn_seg", "--json", "--count", "ptflops", "--depth", "2", "--batch", "8"])
    data = json.loads(capsys.readouterr().out)
    report = rg.analyze("resnet50_fpn_seg")
    assert data["count"] == {"convention": "ptflops", "macs": report.count("ptflops")}
    assert data["activations"] == report.activations
    layers = {r["path"]: r for r in data["layers"]}
    assert layers["decoder"]["kind"] == "decoder" and layers["decoder"]["output_shape"] == [21, 224, 224]
    assert sum(r["macs"] for r in data["layers"] if "." not in r["path"]) == report.count("ptflops")
    assert data["memory"]["bytes"] == dict(report.memory(batch=8).rows())


@pytest.mark.parametrize("convention", ["fvcore", "ptflops"])
def test_decoder_row_in_another_convention(convention: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = rg.analyze("resnet18_unet_seg")
    main(["info", "resnet18_unet_seg", "--count", convention])
    out = capsys.readouterr().out
    decoder = next(row for row in report.per_layer(depth=1, convention=convention) if row.path == "decoder")
    line = next(line for line in out.splitlines() if line.startswith("decoder "))
    assert f" {decoder.macs / 1e6:,.2f}M " in line
    assert f"MACs:   {report.count(convention):,} " in out and f"activations: {report.activations:,} " in out


def test_info_text_shows_the_chosen_convention(capsys: pytest.CaptureFixture[str]) -> None:
    report = rg.analyze("resnet50")
    main(["info", "resnet50", "--count", "ptflops", "--depth", "1", "--batch", "8"])
    out = capsys.readouterr().out
    macs = report.count("ptflops")
    assert f"MACs:   {macs:,} ({macs / 1e9:.3f} G)  [ptflops: " in out
    assert f"activations: {report.activations:,}" in out
    table = out.split("MACs (ptflops)")[-1].split("training memory")[0]  # the per-layer table
    assert [line.split()[0] for line in table.strip().splitlines()[2:]] == [
        row.path for row in report.per_layer(depth=1, convention="ptflops")
    ]
    memory = report.memory(batch=8)
    assert f"{memory.total:,} bytes" in out.split("training memory")[1].splitlines()[-1]
    assert "training memory, batch 8, fp32, sgd (estimate):" in out


def test_default_info_keeps_the_papers_convention(capsys: pytest.CaptureFixture[str]) -> None:
    main(["info", "resnet18"])
    out = capsys.readouterr().out
    assert "MACs:   1,814,073,344 (1.814 G)  [conv + linear, batch 1]" in out  # torchvision's 1.814 GFLOPS
    assert "training memory" not in out and "share" not in out


@pytest.mark.parametrize(
    "extra",
    [
        ["--depth", "0"],
        ["--batch", "0"],
        ["--count", "thop"],
        ["--dtype", "fp64"],
        ["--optimizer", "lion"],
        ["--depth", "two"],
    ],
    ids=" ".join,
)
def test_bad_options_are_usage_errors(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["info", "resnet18", *extra])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage error: ") and extra[0] in lines[0], err


BAD = ["yaml_tab_indent", "key_misspelled_stride", "combo_zero_pad_shrinks", "extends_cycle_a"]


@pytest.mark.parametrize("name", BAD)
def test_analyze_gives_the_clis_located_errors(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bad_specs"
    shutil.copytree(CORPUS, folder)
    monkeypatch.chdir(folder)
    with pytest.raises(SystemExit) as exited:
        main(["info", f"{name}.yaml"])
    assert exited.value.code == 1
    cli_lines = capsys.readouterr().err.splitlines()
    with pytest.raises(rg.SpecError) as raised:
        rg.analyze(f"{name}.yaml")
    assert [f"error: {line}" for line in raised.value.problems] == cli_lines
    expected = (CORPUS / f"{name}.expected").read_text(encoding="utf-8").splitlines()
    assert list(raised.value.problems) == expected


@pytest.mark.parametrize("convention", ["fvcore", "ptflops"])
def test_stage_table_in_another_convention(convention: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = rg.analyze("resnetv2_50")
    main(["info", "resnetv2_50", "--count", convention])
    lines = capsys.readouterr().out.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("stage"))
    assert f"MACs ({convention})" in lines[header]
    table = {line.split()[0]: line for line in lines[header + 2 : header + 8]}
    layers = {row.path: row.macs for row in report.per_layer(depth=1, convention=convention)}
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert f" {layers[stage] / 1e6:,.2f}M " in table[stage]
    assert set(table) == {"stem", "layer1", "layer2", "layer3", "layer4", "head"}
