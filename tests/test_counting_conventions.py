"""Each counting convention equals what its tool reports for the built module.

fvcore (``FlopCountAnalysis``, ``ActivationCountAnalysis``) traces the network with torch.jit and
ptflops runs it with hooks; neither works on the meta device (jit cannot trace meta tensors, and
meta kernels call the tensor functions ptflops patches, so it counts them twice). So each spec is
built on the meta device, given CPU zeros for its weights, and run at batch 1 by each tool. Every
catalog spec is checked at its own input size (``input.size``), activation counts included:
padding, ceil-mode and anti-aliased pools, strides over odd sizes, adaptive pools and decoder
resizes all count differently at different sizes. Decoder heads and backbone options are also
checked at an odd or reduced size.

Most of a full-size spec's time was arithmetic whose values the tools never read, so the counts
are taken the cheap way: the weights are one zero broadcast to each shape, convolutions and batch
norms run as kernels that return zeros in the op's output shape (the real output, with zero
weights), and fvcore's two analyses share one trace. The tools still see the real module, its
real ops and shapes. A set of specs with every replaced op is counted both ways, the reference way
(filled weights, torch's kernels, a trace per analysis) included, and must agree. The whole
catalog at full size costs about 3 minutes of one process on two cores the cheap way, against
about 10 the reference way.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any
from unittest import mock

import pytest
import torch
from torch import nn

import resnet_gen as rg
from resnet_gen.compile import compile_spec
from tests.conftest import CLASSIFIER_SPECS, solved_at_run_time
from tests.counting_support import shape_only_kernels
from tests.test_heads import SMALL as DECODERS

fvcore_nn = pytest.importorskip("fvcore.nn")
fvcore_jit = pytest.importorskip("fvcore.nn.jit_analysis")
ptflops = pytest.importorskip("ptflops")


def _zeroed(spec: rg.Spec, broadcast: bool = True) -> nn.Module:
    """The spec built on the meta device, every parameter and buffer zero on the CPU: a zero
    broadcast to its shape (no memory for the weights, nothing to fill; a shared parameter stays
    shared), or unless ``broadcast`` a filled tensor of its own."""
    with torch.device("meta"):
        model = rg.build(spec)
    if not broadcast:
        model = model.to_empty(device="cpu")
        with torch.no_grad():
            for tensor in (*model.parameters(), *model.buffers()):
                tensor.zero_()
        return model.eval()
    zeros: dict[int, nn.Parameter] = {}

    def zero(tensor: torch.Tensor) -> torch.Tensor:
        return torch.zeros((), dtype=tensor.dtype).expand(tensor.shape)

    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None:
                if id(param) not in zeros:
                    zeros[id(param)] = nn.Parameter(zero(param), param.requires_grad)
                module._parameters[name] = zeros[id(param)]
        for name, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[name] = zero(buffer)
    return model.eval()


def _tool_counts(
    spec: rg.Spec, activations: bool = True, cheap: bool = True, model: nn.Module | None = None
) -> dict[str, int]:
    """What fvcore and ptflops report for the built module at batch 1 (with fvcore's activation
    count unless ``activations`` is False). ``cheap``: broadcast zero weights, the shape-only
    kernels (tests/counting_support.py), and fvcore's two analyses reading one trace of the module (they differ only in the
    handles run over its nodes); otherwise filled weights, torch's kernels and a trace each.
    ``model``: the built module to count, if the caller wants to read it afterwards."""
    model = _zeroed(spec, broadcast=cheap) if model is None else model
    shape = (spec.input.channels, *spec.input.hw)
    x = torch.zeros(1, *shape)
    traced: list[Any] = []

    def trace_once(*args: Any) -> Any:
        if not traced:
            traced.append(trace(*args))
        return traced[0]

    trace = fvcore_jit._get_scoped_trace_graph
    quiet = logging.getLogger("fvcore")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.no_grad())
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            if cheap:
                stack.enter_context(shape_only_kernels())
                stack.enter_context(mock.patch.object(fvcore_jit, "_get_scoped_trace_graph", trace_once))
            flops = fvcore_nn.FlopCountAnalysis(model, x)
            flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            found: dict[str, Any] = {"fvcore": flops.total()}
            if activations:
                acts = fvcore_nn.ActivationCountAnalysis(model, x)
                acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                found["activations"] = acts.total()
            macs, _ = ptflops.get_model_complexity_info(
                model, shape, as_strings=False, print_per_layer_stat=False, backend="pytorch"
            )
            found["ptflops"] = macs
    finally:
        quiet.setLevel(level)
    return {key: int(value) for key, value in found.items()}


def _ours(source: str, overrides: dict[str, Any], activations: bool = True) -> tuple[rg.Spec, dict[str, int]]:
    spec, plan = compile_spec(source, overrides)
    report = rg.analyze(plan)
    counts = {name: report.count(name) for name in ("fvcore", "ptflops")}
    return spec, {**counts, "activations": report.activations} if activations else counts


# Left out, each for its reason: U-Nets (layout: unet, not in CLASSIFIER_SPECS) have their own
# MACs convention, held to fvcore's count in tests/test_unet_diffusers.py. An adaptive ODE
# solver's steps are chosen at run time, so the conventions count one evaluation of its block:
# test_adaptive_ode_specs_differ_from_the_tools_by_whole_evaluations holds the tools to that
# plus whole evaluations, and the fixed-grid Euler form, odenet_mnist_conv_euler, is counted
# with the rest.
SOLVED_AT_RUN_TIME = [name for name in CLASSIFIER_SPECS if solved_at_run_time(name)]
COUNTED_SPECS = [name for name in CLASSIFIER_SPECS if name not in SOLVED_AT_RUN_TIME]


@pytest.mark.parametrize("name", COUNTED_SPECS)
def test_conventions_equal_the_tools_for_every_spec(name: str) -> None:
    spec, ours = _ours(name, {})
    assert _tool_counts(spec) == ours


@pytest.mark.parametrize("name", SOLVED_AT_RUN_TIME)
def test_adaptive_ode_specs_differ_from_the_tools_by_whole_evaluations(name: str) -> None:
    """What the exclusion above leaves out is the solver's step count, nothing else: each tool's
    MACs are the report's plus whole evaluations of the solved block in its convention. ptflops
    counts every one of the forward's ``nfe`` evaluations; fvcore's trace fewer, since the
    evaluations that only steer the step size (read back as Python numbers) reach no output."""
    spec, ours = _ours(name, {}, activations=False)
    report = rg.analyze(spec)
    [solved] = [layer for layer in rg.lower(spec).layers if getattr(layer, "evaluations", 0) is None]
    model = _zeroed(spec)
    counted = _tool_counts(spec, activations=False, model=model)
    ode: Any = model.get_submodule(solved.path)
    nfe = int(ode.nfe)  # ptflops' forward, the last one
    assert nfe > 2
    further = {}
    for convention in ("fvcore", "ptflops"):
        [row] = [row for row in report.per_layer(depth=3, convention=convention) if row.path == solved.path]
        further[convention], rest = divmod(counted[convention] - ours[convention], row.macs)
        assert rest == 0, convention
    assert further["ptflops"] == nfe - 1
    assert 0 < further["fvcore"] < nfe - 1


# The cheap path against the reference one, at a size whose maps do not halve evenly: every op
# the shape-only kernels replace (convs, transposed and weight-standardised ones, batch norms in
# eval and training mode), shared and broadcast weights, the decoders' resizes, crops and concatenations.
CHEAP_CASES: dict[str, dict[str, Any]] = {
    "resnet50": {},
    "resnetv2_50x1_bit": {},  # StdConv: a training-mode batch norm over each weight, group norms
    "resnetblur50": {},  # BlurPool: a fixed-filter depthwise conv
    "cifar_resnet56_tied": {},  # one parameter shared by several convs
    "resnet18_unet_seg": {},  # transposed convs, crops, concatenations
    "resnet50_fpn_seg": {},
    "resnet50_frozen": {"backbone.frozen_stages": 2},  # frozen batch norm: F.batch_norm in eval mode
}


@pytest.mark.parametrize("case", list(CHEAP_CASES))
def test_cheap_counts_equal_the_reference_counts(case: str) -> None:
    name = case.removesuffix("_frozen")
    spec, _ = _ours(name, {"input.size": [37, 29], **CHEAP_CASES[case]})
    assert _tool_counts(spec) == _tool_counts(spec, cheap=False)


def test_shape_only_kernels_are_undone() -> None:
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    norm = nn.BatchNorm2d(3).eval()
    x = torch.ones(1, 2, 5, 5)
    with torch.no_grad():
        with shape_only_kernels():
            assert not norm(conv(x)).any()
        y = norm(conv(x))
    assert y[0, :, 2, 2].tolist() == pytest.approx([18 / (1 + norm.eps) ** 0.5] * 3)


BACKBONES: dict[str, dict[str, Any]] = {
    "features": {"backbone.features_only": True, "backbone.out_indices": [1, 2, 3], "backbone.output_stride": 16},
    "frozen": {"backbone.frozen_stages": 2},  # frozen batch norms: F.batch_norm, no nn.BatchNorm2d
}


@pytest.mark.parametrize("name", ["resnet50", "resnetv2_50"])
@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_conventions_equal_the_tools_for_backbones(name: str, backbone: str) -> None:
    spec, ours = _ours(name, {"input.size": 128, **BACKBONES[backbone]})
    assert _tool_counts(spec) == ours


def test_torchvision_convention_is_the_report_and_torch_flop_counter() -> None:
    from tests.torch_helpers import count_macs

    spec = rg.load_spec("seresnet50")
    report = rg.analyze(spec)
    with torch.device("meta"):
        model = rg.build(spec)
    assert report.count("torchvision") == report.macs == count_macs(model, 3, spec.input.hw)


def test_published_resnet50_numbers() -> None:
    """ResNet-50 as the tools' own documentation quotes it: torchvision 4.09 GFLOPS (its weights'
    metadata, in MACs), ptflops 4.13 GMac (its README), timm's benchmark 4.11 GMACs and 11.11 M
    activations (fvcore's counts, results-imagenet.csv)."""
    from torchvision.models import ResNet50_Weights

    report = rg.analyze("resnet50")
    assert round(report.count("torchvision") / 1e9, 3) == ResNet50_Weights.IMAGENET1K_V2.meta["_ops"]
    assert round(report.count("ptflops") / 1e9, 2) == 4.13
    assert round(report.count("fvcore") / 1e9, 2) == 4.11
    assert round(report.activations / 1e6, 2) == 11.11


def test_unknown_convention_is_refused() -> None:
    report = rg.analyze("resnet18")
    with pytest.raises(
        ValueError, match="unknown counting convention 'thop'; choose one of torchvision, fvcore, ptflops"
    ):
        report.count("thop")


@pytest.mark.parametrize("case", list(DECODERS))
def test_conventions_equal_the_tools_for_decoder_heads(case: str) -> None:
    """Every decoder over several backbones, at an input size whose maps do not halve evenly: the
    U-Net crops each up-conv's output, the FPN resizes to odd sizes, the mask comes back at 37x29."""
    name, *options = DECODERS[case]
    spec = rg.load_spec(name, [*options, "input.size=[37, 29]"])
    report = rg.analyze(spec)
    ours = {"fvcore": report.count("fvcore"), "ptflops": report.count("ptflops"), "activations": report.activations}
    assert _tool_counts(spec) == ours


def test_decoder_operations_count_in_the_decoder_row() -> None:
    """fvcore's per-module counts of the FPN decoder: its resizes belong to the decoder's own
    forward, so the decoder row holds them and its children (the convs) do not."""
    spec = rg.load_spec("resnet50_fpn_seg", ["input.size=64"])
    model = _zeroed(spec)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flops = fvcore_nn.FlopCountAnalysis(model, torch.zeros(1, 3, 64, 64))
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_module = flops.by_module()
    rows = {row.path: row for row in rg.analyze(spec).per_layer(depth=2, convention="fvcore")}
    decoder_rows = [path for path in rows if path.startswith("decoder")]
    assert decoder_rows == ["decoder", "decoder.lateral", "decoder.smooth", "decoder.classifier"]
    for path in decoder_rows:
        assert rows[path].macs == by_module[path], path
    children = sum(rows[path].macs for path in decoder_rows[1:])
    # nearest: 1 per element of the three top-down maps; bilinear: 4 per element of the three
    # coarser levels resized to 16x16 and of the 21-class mask resized to 64x64
    resizes = 256 * (16 * 16 + 8 * 8 + 4 * 4) + 4 * (3 * 256 * 16 * 16 + 21 * 64 * 64)
    assert rows["decoder"].macs - children == resizes
    assert rows["decoder"].kind == "decoder" and rows["decoder"].output_shape == (21, 64, 64)
