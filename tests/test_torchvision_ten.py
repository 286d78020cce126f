"""Issue: the foundation. torchvision's ten ResNets, against torchvision itself and the published numbers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torchvision
from torch import nn

import resnet_gen as rg
from tests.torch_helpers import assert_same_behaviour, count_macs, count_params, randomize

# Published by torchvision (weights metadata `num_params` and `_ops` in GFLOPS, which are GMACs).
TORCHVISION = {
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "resnext50_32x4d": (25_028_904, 4.230),
    "resnext101_32x8d": (88_791_336, 16.414),
    "resnext101_64x4d": (83_455_272, 15.460),
    "wide_resnet50_2": (68_883_240, 11.398),
    "wide_resnet101_2": (126_886_696, 22.753),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_published_params_and_macs(name: str) -> None:
    report = rg.analyze(rg.load_spec(name))
    params, gmacs = TORCHVISION[name]
    assert report.params == params
    assert round(report.macs / 1e9, 3) == pytest.approx(gmacs, abs=1e-9)
    assert report.flops == 2 * report.macs


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_model_has_the_same_counts(name: str) -> None:
    with torch.device("meta"):
        theirs = getattr(torchvision.models, name)()
    report = rg.analyze(rg.load_spec(name))
    assert count_params(theirs) == report.params
    assert count_macs(theirs, 3, (224, 224)) == report.macs


# He et al. 2015, Table 1: the stride in the first 1x1 of the bottleneck.
PAPER_TABLE_1 = {"resnet18": 1.814, "resnet34": 3.664, "resnet50": 3.858, "resnet101": 7.570, "resnet152": 11.282}


@pytest.mark.parametrize("name", sorted(PAPER_TABLE_1))
def test_paper_stride_placement_gives_table_1(name: str) -> None:
    spec = rg.load_spec(name)
    overrides = {"block.stride_on": "1x1"} if spec.block.type == "bottleneck" else {}
    report = rg.analyze(rg.load_spec(name, overrides=overrides))
    assert round(report.macs / 1e9, 3) == pytest.approx(PAPER_TABLE_1[name], abs=1e-9)


@pytest.mark.parametrize(
    ("overrides", "params"),
    [
        ({"input.channels": 1}, 25_550_760),
        ({"head.num_classes": 10}, 23_528_522),
        ({"head": None}, 23_508_032),
    ],
)
def test_resnet50_variants(overrides: dict[str, object], params: int) -> None:
    spec = rg.load_spec("resnet50", overrides=overrides)
    assert rg.analyze(spec).params == params
    with torch.device("meta"):
        model = rg.build(spec)
    assert count_params(model) == params


def _uninitialised(make: Callable[[], nn.Module]) -> nn.Module:
    """``make()`` in float64, its memory allocated but not initialised; integer buffers zeroed."""
    with torch.device("meta"):
        model = make()
    model = model.to_empty(device="cpu").double()
    with torch.no_grad():
        for buffer in model.buffers():
            if not buffer.is_floating_point():
                buffer.zero_()
    return model


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_state_dicts_load_both_ways_and_outputs_agree(name: str) -> None:
    # Allocated without initialisation (every weight gets a random value anyway): initialising
    # copies of a 127M-parameter net took longer than comparing them. Ours takes torchvision's
    # tensors themselves (assign): the same values as a strict copy, held once; each model still
    # gets its own gradients.
    theirs = _uninitialised(getattr(torchvision.models, name))
    with torch.device("meta"):
        ours = rg.build(rg.load_spec(name))
    randomize(theirs, seed=1)
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    # And back: our state_dict loads strictly (keys and shapes) into a fresh torchvision model and
    # puts at every key the value torchvision's had there. The fresh model takes our tensors
    # themselves (assign), so a third float64 copy of the net is never allocated.
    with torch.device("meta"):
        again = getattr(torchvision.models, name)()
    again.load_state_dict(ours.state_dict(), strict=True, assign=True)
    for key, value in theirs.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    del again
    # 32x32 leaves the last stage 1x1, so every layer still computes; batch 2 keeps train-mode
    # batch statistics defined.
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert_same_behaviour(ours, theirs, x)


def test_zero_init_residual_matches_torchvision() -> None:
    spec = rg.load_spec("resnet50", overrides={"init.zero_init_residual": True})
    ours = rg.build(spec)
    theirs = torchvision.models.resnet50(zero_init_residual=True)
    for key, value in theirs.state_dict().items():
        if key.endswith("bn3.weight"):
            assert torch.count_nonzero(ours.state_dict()[key]) == 0
            assert torch.count_nonzero(value) == 0
    # Same initial distribution as torchvision: kaiming fan-out for convs.
    std = ours.state_dict()["layer1.0.conv2.weight"].std().item()
    assert std == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.1)
