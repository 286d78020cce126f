"""Each counting convention equals what its tool reports for the built module.

fvcore (``FlopCountAnalysis``, ``ActivationCountAnalysis``) traces the network with torch.jit and
ptflops runs it with hooks; neither works on the meta device (jit cannot trace meta tensors, and
meta kernels call the tensor functions ptflops patches, so it counts them twice). So each spec is
built on the meta device, given CPU storage filled with zeros (no initialisation, no denormals),
and run once per tool at batch 1. Every catalog spec's fvcore and ptflops counts are checked at an
input of at most 64 pixels (the catalog's 32-pixel CIFAR nets at their own size: the rules do not
depend on the size, and tracing a big net at 224 pixels costs seconds more each); a set that
covers every layer kind (stems, attention modules, anti-aliasing, weight standardisation, the
norms and the activations), backbones and the three decoder heads, is checked at full size,
activation counts included. Decoder heads (segmentation and multitask: transposed, FPN and U-Net
decoders, their resizes, sums, concatenations and crops) are also checked over a set of backbones
at an odd input size. Each spec costs a few seconds, most of it fvcore's trace.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import pytest
import torch
from torch import nn

import resnet_gen as rg
from resnet_gen.compile import compile_spec
from tests.conftest import CLASSIFIER_SPECS, solved_at_run_time
from tests.test_heads import SMALL as DECODERS

fvcore_nn = pytest.importorskip("fvcore.nn")
ptflops = pytest.importorskip("ptflops")

REDUCED = 64
FULL_SIZE = [
    "resnet50",
    "seresnet50",
    "ecaresnet50d",
    "resnest50d",
    "resnest50d_4s2x40d",
    "resnetblur50",
    "resnetaa50",
    "resnet50_gn",
    "resnetv2_50x1_bit",
    "resnetv2_50d_evos",
    "resnetv2_50d_frn",
    "resnetv2_50d_gn",
    "wrn28_10_dropout",
    # decoder heads: FPN (nearest and bilinear resizes, sums), U-Net (up-convs, crops, concatenations), multitask
    "resnet50_fpn_seg",
    "resnet18_unet_seg",
    "medical_resnet18_multitask",
    # one spec of each other family whose specs are larger than REDUCED: grouped convs, ResNet-RS, timm's test net
    "resnext50_32x4d",
    "seresnext26d_32x4d",
    "ecaresnext26t_32x4d",
    "resnetrs50",
    "test_resnet",
]
# Families left out of FULL_SIZE, for the spec that stands in for them at full size.
FULL_SIZE_STAND_INS = {
    # senet154, the family's one spec, costs about 8 s on one core at 224 pixels (20 GMACs, traced
    # twice and run once); its layers: a deep stem, grouped 3x3 convs, squeeze-excite, head dropout.
    "senet": "seresnext26d_32x4d",
    # torchvision's wide ResNets are resnet50/101 with wider 3x3 convs: resnet50's layers.
    "wide_resnet": "resnet50",
}


def _zeroed(spec: rg.Spec) -> nn.Module:
    with torch.device("meta"):
        model = rg.build(spec)
    model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
    return model


def _tool_counts(spec: rg.Spec, activations: bool = True) -> dict[str, int]:
    """What fvcore and ptflops report for the built module at batch 1 (with fvcore's activation
    count unless ``activations`` is False: a second trace)."""
    model = _zeroed(spec)
    shape = (spec.input.channels, *spec.input.hw)
    x = torch.zeros(1, *shape)
    quiet = logging.getLogger("fvcore")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
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


# U-Nets (layout: unet) have their own MACs convention, held to fvcore's count in
# tests/test_unet_diffusers.py; every other catalog spec, decoder heads included, is counted here.
# An adaptive ODE solver's steps are chosen at run time: the conventions count one evaluation
# (tests/test_catalog_counts.py holds that to torch's count times nfe); the fixed-grid Euler
# form, odenet_mnist_conv_euler, holds the ODE block's rules to the tools here.
COUNTED_SPECS = [name for name in CLASSIFIER_SPECS if not solved_at_run_time(name)]


@pytest.mark.parametrize("name", COUNTED_SPECS)
def test_conventions_equal_the_tools_for_every_spec(name: str) -> None:
    spec = rg.load_spec(name)
    overrides = {"input.size": REDUCED} if min(spec.input.hw) > REDUCED else {}
    spec, ours = _ours(name, overrides, activations=False)  # activations: the full-size set below
    assert _tool_counts(spec, activations=False) == ours


@pytest.mark.parametrize("name", FULL_SIZE)
def test_conventions_equal_the_tools_at_full_size(name: str) -> None:
    spec, ours = _ours(name, {})
    assert _tool_counts(spec) == ours


def test_full_size_set_covers_every_family() -> None:
    """The counts follow per-element rules, so a family counted right at 64 pixels is counted
    right at its own size if one of its specs is: each family larger than REDUCED has one in
    FULL_SIZE (the CIFAR families are counted at their own 32 pixels above)."""
    families: dict[str, list[str]] = {}
    for name in CLASSIFIER_SPECS:
        spec = rg.load_spec(name)
        if min(spec.input.hw) > REDUCED:
            families.setdefault(spec.family, []).append(name)
    for family, names in families.items():
        assert set(names) & set(FULL_SIZE) or FULL_SIZE_STAND_INS.get(family) in FULL_SIZE, family


BACKBONES = {
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
