"""``info``'s counting options on diffusion U-Nets (``layout: unet``), as on classifiers: each
convention equals what its tool reports for the built module (fvcore's ``FlopCountAnalysis`` and
``ActivationCountAnalysis``, ptflops' ``get_model_complexity_info``, run on ``(x, t)`` at batch 1),
the per-layer table agrees with the live module (forward hooks, its parameters, torch's
FlopCounterMode and fvcore per module), the memory estimate with torch's CPU allocator, and the
CLI with the Python API. Every U-Net is counted at its own sample size: the tools run on zero
weights with convolutions that return zeros in their output shapes (test_counting_conventions'
shape-only kernels), so the 256x256 layout takes seconds, not minutes of arithmetic."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from resnet_gen.cli import main
from resnet_gen.unet import build_unet, load_unet_and_plan
from resnet_gen.unet.plan import UNetPlan
from resnet_gen.unet.report import UNetReport, unet_report
from tests.counting_support import shape_only_kernels
from tests.test_info_counting import module_macs
from tests.test_memory_estimate import _bytes, _optimizer, _peak, assert_bounds_the_peak

fvcore_nn = pytest.importorskip("fvcore.nn")
ptflops = pytest.importorskip("ptflops")

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")  # fvcore's tracer

# Every layer the U-Net has: scale-and-shift injection, four heads, TensorFlow padding, dropout,
# ReLU and no norm in the middle's attention; average-pool down-sampling, GELU and a 3x3 shortcut.
VARIANT = [
    "unet.time_injection=scale_shift",
    "unet.attention_head_dim=16",
    "unet.downsample.padding=0",
    "unet.dropout=0.1",
    "unet.activation=relu",
]
OTHER_VARIANT = ["unet.downsample=avg", "unet.activation=gelu", "unet.shortcut_kernel=3"]
COUNTED = {
    "unet_tiny": ("unet_tiny", []),
    "unet_tiny_variant": ("unet_tiny", VARIANT),
    "unet_tiny_other_variant": ("unet_tiny", OTHER_VARIANT),
    "ddpm_cifar10": ("ddpm_cifar10", []),
    "ddpm_church_256": ("ddpm_church_256", []),
}


def _load(name: str, overrides: list[str]) -> tuple[UNetPlan, UNetReport]:
    _, plan = load_unet_and_plan(name, overrides or None)
    return plan, unet_report(plan)


def _zeroed(plan: UNetPlan) -> nn.Module:
    """The built module with zeros for weights: no initialisation to wait for."""
    with torch.device("meta"):
        model = build_unet(plan)
    model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.zero_()
    return model


def _inputs(plan: UNetPlan, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(batch, plan.in_channels, *plan.size), torch.tensor([3] * batch)


def _tool_counts(plan: UNetPlan) -> dict[str, int]:
    model = _zeroed(plan)
    x, t = _inputs(plan)
    quiet = logging.getLogger("fvcore")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings(), shape_only_kernels():
            warnings.simplefilter("ignore")
            flops = fvcore_nn.FlopCountAnalysis(model, (x, t))
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            acts = fvcore_nn.ActivationCountAnalysis(model, (x, t))
            acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            macs, params = ptflops.get_model_complexity_info(
                model,
                tuple(x.shape[1:]),
                input_constructor=lambda _shape: {"x": x, "t": t},
                as_strings=False,
                print_per_layer_stat=False,
                backend="pytorch",
            )
    finally:
        quiet.setLevel(level)
    assert params == plan.params
    return {"fvcore": int(flops.total()), "activations": int(acts.total()), "ptflops": int(macs)}


@pytest.mark.parametrize("case", list(COUNTED))
def test_conventions_equal_the_tools(case: str) -> None:
    plan, report = _load(*COUNTED[case])
    ours = {"fvcore": report.count("fvcore"), "activations": report.activations, "ptflops": report.count("ptflops")}
    assert _tool_counts(plan) == ours
    assert report.count("torchvision") == report.macs == plan.macs  # the plan's own convention, unchanged


def _live(plan: UNetPlan) -> tuple[nn.Module, dict[str, tuple[int, ...]], dict[str, int]]:
    """The built module, each called module's last output shape (batch left out; a down stage's
    first output, the map it hands on), and torch's FlopCounterMode MACs per module."""
    torch.manual_seed(0)
    model = build_unet(plan).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for path, module in model.named_modules():
        if path:

            def record(_module: nn.Module, _inputs: object, output: Any, path: str = path) -> None:
                tensor = output[0] if isinstance(output, tuple) else output
                shapes[path] = tuple(tensor.shape[1:])

            hooks.append(module.register_forward_hook(record))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*_inputs(plan))
    for hook in hooks:
        hook.remove()
    return model, shapes, module_macs(model, counter)


def _fvcore_by_module(plan: UNetPlan) -> dict[str, int]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flops = fvcore_nn.FlopCountAnalysis(_zeroed(plan), _inputs(plan))
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return dict(flops.by_module())


@pytest.mark.parametrize("case", ["unet_tiny", "unet_tiny_variant", "unet_tiny_other_variant"])
def test_per_layer_rows_match_the_live_module(case: str) -> None:
    plan, report = _load(*COUNTED[case])
    model, shapes, macs = _live(plan)
    by_module = _fvcore_by_module(plan)
    deepest = max(path.count(".") + 1 for path, _ in model.named_modules() if path)
    rows = report.per_layer(depth=deepest)
    fvcore_rows = {row.path: row.macs for row in report.per_layer(depth=deepest, convention="fvcore")}
    # every module but the stages' empty ModuleLists (no attentions, no resampler): they run nothing
    modules = {
        path
        for path, module in model.named_modules()
        if path and not (isinstance(module, nn.ModuleList) and not len(module))
    }
    assert {row.path for row in rows} == modules
    for row in rows:
        module = model.get_submodule(row.path)
        assert row.params == sum(p.numel() for p in module.parameters()), row.path
        assert row.depth == row.path.count(".") + 1
        assert fvcore_rows[row.path] == by_module.get(row.path, 0), row.path
        if isinstance(module, nn.ModuleList):  # never called itself: its children's sum
            assert row.macs == sum(macs.get(f"{row.path}.{child}", 0) for child, _ in module.named_children())
        else:
            assert row.output_shape == shapes[row.path], row.path
            assert row.macs == macs.get(row.path, 0), row.path
    for depth in range(1, deepest + 1):
        for convention in ("torchvision", "fvcore", "ptflops"):
            top = [row for row in report.per_layer(depth=depth, convention=convention) if row.depth == 1]
            assert sum(row.share for row in top) == pytest.approx(1.0)
            assert sum(row.macs for row in top) == report.count(convention)
    with pytest.raises(ValueError, match="depth must be 1 or more, not 0"):
        report.per_layer(depth=0)


def _train(plan: UNetPlan, batch: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = build_unet(plan).train()
    return model, torch.randn(batch, plan.in_channels, *plan.size), torch.arange(batch) * 97


@pytest.mark.parametrize("case", ["unet_tiny", "unet_tiny_variant", "unet_tiny_other_variant"])
def test_saved_activations_are_what_the_forward_pass_keeps(case: str) -> None:
    """Byte for byte at batch 2 but for one float64 scalar per attention (the softmax's scale,
    kept by its product once per batch, not per sample); at batch 1 F.linear folds attention's
    input without a copy, so there the estimate is higher."""
    plan, report = _load(*COUNTED[case])
    model, x, t = _train(plan, 2)
    model(x, t)  # warm-up: lazily made state is not the forward pass's
    outputs: list[torch.Tensor] = []
    _, kept = _peak(lambda: outputs.append(model(x, t)))
    attentions = sum(len(stage.attentions) for stage in plan.stages)
    assert kept - _bytes(outputs) == report.memory(2).activations + 8 * attentions


@pytest.mark.parametrize(
    ("case", "batch", "optimizer"),
    [("unet_tiny", 12, "sgd"), ("unet_tiny_variant", 4, "adamw"), ("unet_tiny_other_variant", 8, "sgd_momentum")],
)
def test_estimate_bounds_the_measured_peak(case: str, batch: int, optimizer: str) -> None:
    plan, report = _load(*COUNTED[case])
    model, x, t = _train(plan, batch)
    opt = _optimizer(optimizer, model.parameters())
    noise = torch.randn(batch, plan.out_channels, *plan.size)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(model(x, t), noise).backward()
        opt.step()

    assert_bounds_the_peak(report.memory(batch, "fp32", optimizer), model, x, opt, step)


def test_info_json_gives_the_api_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["info", "ddpm_cifar10", "--json", "--count", "fvcore", "--depth", "3", "--batch", "16", "--dtype", "bf16"]
    main([*argv, "--optimizer", "adamw"])
    data = json.loads(capsys.readouterr().out)
    _, report = _load("ddpm_cifar10", [])
    assert data["count"] == {"convention": "fvcore", "macs": report.count("fvcore")}
    assert data["activations"] == report.activations
    assert data["macs"] == report.macs and data["params"] == report.params == 35_746_307
    rows = report.per_layer(depth=3, convention="fvcore")
    assert [(r["path"], r["kind"], r["macs"], r["params"], tuple(r["output_shape"])) for r in data["layers"]] == [
        (r.path, r.kind, r.macs, r.params, r.output_shape) for r in rows
    ]
    memory = report.memory(batch=16, dtype="bf16", optimizer="adamw")
    assert data["memory"]["bytes"] == dict(memory.rows())
    assert data["memory"]["bytes"]["total"] == sum(value for key, value in memory.rows() if key != "total")
    assert data["macs_convention"].startswith("fvcore: ")


def test_info_text_in_another_convention(capsys: pytest.CaptureFixture[str]) -> None:
    plan, report = _load("unet_tiny", [])
    main(["info", "unet_tiny", "--count", "ptflops", "--depth", "2", "--batch", "8"])
    out = capsys.readouterr().out
    macs = report.count("ptflops")
    assert f"MACs:   {macs:,} ({macs / 1e9:.3f} G)  [ptflops]" in out
    assert f"activations: {report.activations:,} " in out and "MACs convention: ptflops: " in out
    lines = out.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("stage"))
    by_row = {row.path: row.macs for row in report.per_layer(depth=2, convention="ptflops")}
    table_end = lines.index("", header)
    stage_lines = {line.split()[0]: line for line in lines[header + 2 : table_end]}
    stages = {stage.path for stage in plan.stages}
    assert set(stage_lines) == {"time_embedding", "conv_in", *stages, "out"}
    stage_lines = {path: line for path, line in stage_lines.items() if path in stages}
    for path, line in stage_lines.items():
        assert f" {by_row[path] / 1e6:,.2f}M " in line, path
    table = out.split("MACs (ptflops)")[-1].split("training memory")[0]
    assert [line.split()[0] for line in table.strip().splitlines()[2:]] == [
        row.path for row in report.per_layer(2, "ptflops")
    ]
    memory = report.memory(batch=8)
    assert "training memory, batch 8, fp32, sgd (estimate):" in out
    assert f"{memory.total:,} bytes" in out.split("training memory")[1].splitlines()[-1]


def test_default_info_keeps_the_plans_convention(capsys: pytest.CaptureFixture[str]) -> None:
    from resnet_gen.unet.plan import MACS_CONVENTION

    _, report = _load("unet_tiny", [])
    main(["info", "unet_tiny"])
    out = capsys.readouterr().out
    assert f"MACs:   {report.macs:,} " in out and f"MACs convention: {MACS_CONVENTION}" in out
    assert f"activations: {report.activations:,} " in out
    assert "training memory" not in out and "share" not in out


@pytest.mark.parametrize("extra", [["--depth", "0"], ["--batch", "0"], ["--count", "thop"]], ids=" ".join)
def test_bad_options_are_usage_errors(extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["info", "unet_tiny", *extra])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage error: ") and extra[0] in lines[0], err


def test_the_python_api_reports_a_unet_from_its_spec_plan_file_or_name() -> None:
    """``rg.analyze`` takes a U-Net as it takes a classifier: by name, path, spec or plan, each the
    same report as the CLI's, with the counts a classifier's report has."""
    import resnet_gen as rg
    from resnet_gen import catalog

    spec, plan = load_unet_and_plan("unet_tiny")
    report = unet_report(plan)
    by_path = rg.analyze(catalog.specs_dir() / "unet_tiny.yaml")
    assert rg.analyze("unet_tiny") == by_path == rg.analyze(spec) == rg.analyze(plan) == report
    assert isinstance(by_path, UNetReport)
    assert by_path.count("fvcore") == report.count("fvcore") and by_path.activations == report.activations
    assert by_path.per_layer(1) == report.per_layer(1)
