"""The papers' networks: published counts, torch's counts, linear growth, and the reference code.

Numbers are the exact counts for the papers' tables (CIFAR-10 heads), with the papers' rounded
figures in comments. Each shipped spec is checked three ways: its plan, torch's count of the
built module, and (for the CIFAR families) the function computed by a plain transcription of the
reference implementation (``cifar_reference_nets``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from cifar_reference_nets import (
    He2016Net,
    he2015_cifar,
    kuangliu_resnet,
    preact_bottleneck_cifar,
    resnext29,
    wide_resnet,
)
from torch import nn
from torch_helpers import count_params, randomize

from resnet_gen import build, catalog, load_spec, lower

# He et al. 2015, Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M (option A); option B adds two projections.
HE2015_DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}
HE2015_A = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962, 1202: 19_421_274}
HE2015_B = {20: 272_474, 32: 466_906, 44: 661_338, 56: 855_770, 110: 1_730_714, 1202: 19_424_026}
PLAIN_DEPTHS = (20, 32, 44, 56, 110)

# He et al. 2016, Fig. 4 / Table 3: the five residual units, (a) to (e).
UNITS = ("post", "bn_after_add", "relu_before_add", "relu_preact", "pre")


def he2016_unit_params(unit: str, n: int, *, bottleneck: bool) -> int:
    """ResNet-(6n+2) (basic) or -(9n+2) (bottleneck) with ``unit``, counted from the paper's
    description: a 3x3 stem of 16 (BN except in unit e), stages of 16/32/64 (x4 out for bottlenecks),
    option A (basic) or 1x1 projections (bottleneck; with a BN in units a to c), a final BN in unit e."""

    def bn(channels: int) -> int:
        return 2 * channels

    total = 3 * 16 * 9 + (0 if unit == "pre" else bn(16))
    cin = 16
    for width in (16, 32, 64):
        cout = 4 * width if bottleneck else width
        for index in range(n):
            if bottleneck:
                convs = cin * width + width * width * 9 + width * cout
                # Unit e normalises each conv's input; the others each conv's output.
                norms = bn(cin) + 2 * bn(width) if unit == "pre" else 2 * bn(width) + bn(cout)
                if index == 0:  # every stage's first bottleneck changes the shape: a projection
                    convs += cin * cout + (bn(cout) if unit in ("post", "bn_after_add", "relu_before_add") else 0)
            else:
                convs = cin * width * 9 + width * width * 9
                norms = bn(cin) + bn(width) if unit == "pre" else 2 * bn(width)
            total += convs + norms
            cin = cout
    return total + (bn(cin) if unit == "pre" else 0) + cin * 10 + 10


PAPER_PARAMS: dict[str, int] = {
    **{f"cifar_resnet{depth}": params for depth, params in HE2015_A.items()},
    **{f"cifar_resnet{depth}_b": params for depth, params in HE2015_B.items()},
    **{f"cifar_plain{depth}": HE2015_A[depth] for depth in PLAIN_DEPTHS},
    # He et al. 2016, Table 4: 1.7M, 10.2M.
    "cifar_preact_resnet164": 1_703_258,
    "cifar_preact_resnet1001": 10_327_706,
    # Table 3's units: the 110-layer nets all have 1.7M (the norms move but keep their widths); the
    # 164-layer ones 1.70M, the pre-activation units without the projections' BNs.
    **{f"cifar_resnet110_{unit}": he2016_unit_params(unit, 18, bottleneck=False) for unit in UNITS},
    **{f"cifar_resnet164_{unit}": he2016_unit_params(unit, 18, bottleneck=True) for unit in UNITS},
    # Zagoruyko & Komodakis 2016, Table 5: 36.5M, 8.9M, 11.0M (dropout adds nothing).
    "wrn28_10": 36_479_194,
    "wrn28_10_dropout": 36_479_194,
    "wrn40_4": 8_949_210,
    "wrn16_8": 10_961_370,
    # Xie et al. 2017, Table 7: 34.4M, 68.1M.
    "resnext29_8x64d": 34_426_698,
    "resnext29_16x64d": 68_155_210,
    # kuangliu/pytorch-cifar ResNet-18..152 (3x3 stride-1 stem, no max pool, 10 classes).
    "cifar_resnet18": 11_173_962,
    "cifar_resnet34": 21_282_122,
    "cifar_resnet50": 23_520_842,
    "cifar_resnet101": 42_512_970,
    "cifar_resnet152": 58_156_618,
    # Bag of Tricks: B is torchvision's ResNet-50; C adds 19,232 (deep stem); D adds none over C.
    "resnet50_b": 25_557_032,
    "resnet50_c": 25_557_032 + 19_232,
    "resnet50_d": 25_557_032 + 19_232,
}

# Published MACs at the spec's input size (32x32 for CIFAR, 224x224 for ImageNet), to the digits published.
PUBLISHED_MACS: dict[str, tuple[float, float, int]] = {  # name: (value, unit, decimals)
    "cifar_resnet20": (40.55, 1e6, 2),
    "cifar_resnet56": (125.49, 1e6, 2),
    "cifar_resnet110": (252.89, 1e6, 2),
    "resnet50_b": (4.089, 1e9, 3),
    "resnet50_c": (4.329, 1e9, 3),
    "resnet50_d": (4.329, 1e9, 3),
}

SMOKE_SIZE = {32: 8, 224: 32}  # small inputs that still leave every stage at least 1x1


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Many small ops: one thread each is far faster than two workers fighting over two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_papers_spec_in_the_catalog_is_checked_here() -> None:
    # cifar_resnet56_tied is ResNet-56 read as forward Euler, not a net of these papers' tables;
    # tests/test_tied_stages.py proves its count.
    papers = re.compile(r"(?!.*_tied$)(cifar_.*|wrn\d.*|resnext29_.*|resnet50_[a-z])")
    assert {name for name in catalog.catalog_names() if papers.fullmatch(name)} == set(PAPER_PARAMS)


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_plan_and_reference_give_the_papers_parameter_count(name: str) -> None:
    spec = load_spec(name)
    assert lower(spec).params == PAPER_PARAMS[name]
    assert spec.reference is not None and spec.reference.params == PAPER_PARAMS[name]


def test_unit_counts_differ_only_where_norms_change_width() -> None:
    """The count above against the paper's rounded figures (1.7M for both depths, Tables 3 and 4),
    and the two pre-activation units of ResNet-164 share the shipped pre-activation net's count."""
    for unit in UNITS:
        assert round(he2016_unit_params(unit, 18, bottleneck=False) / 1e6, 1) == 1.7
        assert round(he2016_unit_params(unit, 18, bottleneck=True) / 1e6, 1) == 1.7
    assert he2016_unit_params("pre", 18, bottleneck=False) == HE2015_A[110]
    assert he2016_unit_params("pre", 18, bottleneck=True) == PAPER_PARAMS["cifar_preact_resnet164"]
    assert he2016_unit_params("relu_preact", 18, bottleneck=True) == PAPER_PARAMS["cifar_preact_resnet164"]
    # Units a to c keep a BN on each of the three projections (64 + 128 + 256 channels).
    assert he2016_unit_params("post", 18, bottleneck=True) - PAPER_PARAMS["cifar_preact_resnet164"] == 2 * (
        64 + 128 + 256
    )


@pytest.mark.parametrize("name", sorted(PUBLISHED_MACS))
def test_plan_gives_the_published_macs(name: str) -> None:
    value, unit, decimals = PUBLISHED_MACS[name]
    assert round(lower(load_spec(name)).macs / unit, decimals) == value


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_torch_counts_the_built_module_like_the_plan_and_it_trains(name: str) -> None:
    """Build once: parameters() and one small forward/backward. The flop counter's MACs of the
    built module equal the plan's for every shipped spec in test_catalog_counts.py (on the meta
    device); counting here again ran a real forward at the full input size for nothing new."""
    plan = lower(load_spec(name))
    model = build(plan)
    assert count_params(model) == plan.params == PAPER_PARAMS[name]

    size = SMOKE_SIZE[plan.input_size[0]]
    model.train()
    out = model(torch.randn(2, plan.input_channels, size, size))
    assert plan.head is not None and out.shape == (2, plan.head.num_classes)
    out.square().mean().backward()
    assert torch.isfinite(out).all()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def _per_unit_basic(width: int) -> int:
    """Parameters one more 3x3-3x3 basic block of ``width`` adds: two convs and two BNs."""
    return 2 * 9 * width * width + 2 * 2 * width


def _per_unit_preact_bottleneck(out: int) -> int:
    """One more identity pre-activation bottleneck: BN(out), 1x1, BN, 3x3, BN, 1x1 at a quarter width."""
    mid = out // 4
    return 2 * out + out * mid + 2 * mid + 9 * mid * mid + 2 * mid + mid * out


@pytest.mark.parametrize(
    ("names_by_n", "per_n"),
    [
        ({n: f"cifar_resnet{d}" for d, n in HE2015_DEPTHS.items()}, sum(map(_per_unit_basic, (16, 32, 64)))),
        ({n: f"cifar_resnet{d}_b" for d, n in HE2015_DEPTHS.items()}, sum(map(_per_unit_basic, (16, 32, 64)))),
        ({HE2015_DEPTHS[d]: f"cifar_plain{d}" for d in PLAIN_DEPTHS}, sum(map(_per_unit_basic, (16, 32, 64)))),
        (
            {18: "cifar_preact_resnet164", 111: "cifar_preact_resnet1001"},
            sum(map(_per_unit_preact_bottleneck, (64, 128, 256))),
        ),
    ],
    ids=["resnet_A", "resnet_B", "plain", "preact"],
)
def test_parameters_grow_linearly_with_blocks_per_stage(names_by_n: dict[int, str], per_n: int) -> None:
    counts = {n: lower(load_spec(name)).params for n, name in names_by_n.items()}
    smallest = min(counts)
    for n, params in counts.items():
        assert params == counts[smallest] + (n - smallest) * per_n, names_by_n[n]


def test_he2015_macs_grow_linearly_with_blocks_per_stage() -> None:
    # Each extra n adds two 3x3 convs per stage: 16 channels on 32x32, 32 on 16x16, 64 on 8x8.
    per_n = sum(2 * 9 * w * w * s * s for w, s in ((16, 32), (32, 16), (64, 8)))
    macs = {n: lower(load_spec(f"cifar_resnet{d}")).macs for d, n in HE2015_DEPTHS.items()}
    for n, value in macs.items():
        assert value == macs[3] + (n - 3) * per_n


def test_bag_of_tricks_deltas_in_plan_and_torch() -> None:
    plans = {k: lower(load_spec(f"resnet50_{k}")) for k in "bcd"}
    assert plans["c"].params - plans["b"].params == 19_232
    assert plans["d"].params == plans["c"].params
    with torch.device("meta"):
        counts = {k: count_params(build(plan)) for k, plan in plans.items()}
    assert counts["c"] - counts["b"] == 19_232
    assert counts["d"] == counts["c"]


def test_bag_of_tricks_against_torchvision_and_timm() -> None:
    """B is torchvision's ResNet-50; C and D are timm's resnet50c/resnet50d (same weights, same outputs)."""
    import timm
    import torchvision

    with torch.device("meta"):
        assert count_params(build(load_spec("resnet50_b"))) == count_params(torchvision.models.resnet50())
        assert count_params(build(load_spec("resnet50_c"))) == count_params(timm.create_model("resnet50c"))
    ours = build(load_spec("resnet50_d")).double()
    theirs = timm.create_model("resnet50d").double()
    randomize(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    _assert_same_function(ours, theirs, x)


# Each case: shipped spec, overrides that shrink it where the full net would be slow, and the
# reference network of the same shape.
REFERENCE_CASES: dict[str, tuple[str, dict[str, Any], Callable[[], nn.Module]]] = {
    "resnet20_A": ("cifar_resnet20", {}, lambda: he2015_cifar(3, "A")),
    "resnet20_B": ("cifar_resnet20_b", {}, lambda: he2015_cifar(3, "B")),
    "plain20": ("cifar_plain20", {}, lambda: he2015_cifar(3, "none")),
    "preact164": ("cifar_preact_resnet164", {}, lambda: preact_bottleneck_cifar(18)),
    "wrn16_8": ("wrn16_8", {}, lambda: wide_resnet(16, 8)),
    "wrn10_2_dropout": (
        "wrn28_10_dropout",
        {
            **{f"stages[{i}].blocks": 1 for i in range(3)},
            **{f"stages[{i}].width": 32 * 2**i for i in range(3)},
        },
        lambda: wide_resnet(10, 2, dropout=0.3),
    ),
    "resnext29_8x8d_1block": (
        "resnext29_8x64d",
        {"block.width_per_group": 8, **{f"stages[{i}].blocks": 1 for i in range(3)}},
        lambda: resnext29(8, 8, blocks=1),
    ),
    "cifar_resnet18": ("cifar_resnet18", {}, lambda: kuangliu_resnet((2, 2, 2, 2), bottleneck=False)),
    **{
        f"cifar_resnet110_{unit}_2blocks": (
            f"cifar_resnet110_{unit}",
            {f"stages[{i}].blocks": 2 for i in range(3)},
            lambda unit=unit: He2016Net(unit, 2, bottleneck=False),
        )
        for unit in UNITS
    },
    **{
        f"cifar_resnet164_{unit}_2blocks": (
            f"cifar_resnet164_{unit}",
            {f"stages[{i}].blocks": 2 for i in range(3)},
            lambda unit=unit: He2016Net(unit, 2, bottleneck=True),
        )
        for unit in UNITS
    },
    "cifar_resnet50_1block": (
        "cifar_resnet50",
        {f"stages[{i}].blocks": 1 for i in range(4)},
        lambda: kuangliu_resnet((1, 1, 1, 1), bottleneck=True),
    ),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_spec_computes_what_the_reference_implementation_computes(case: str) -> None:
    name, overrides, reference = REFERENCE_CASES[case]
    ours = build(load_spec(name, overrides)).double()
    theirs = reference().double()
    randomize(ours)
    _copy_by_position(ours, theirs)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    _assert_same_function(ours, theirs, x)


def _copy_by_position(source: nn.Module, target: nn.Module) -> None:
    """Copy every tensor of ``source`` into ``target``; both register them in execution order."""
    ours = list(source.state_dict().items())
    theirs = list(target.state_dict().items())
    assert len(ours) == len(theirs)
    for (our_key, our_tensor), (their_key, their_tensor) in zip(ours, theirs, strict=True):
        assert our_tensor.shape == their_tensor.shape, (our_key, their_key)
    target.load_state_dict({key: tensor for (_, tensor), (key, _) in zip(ours, theirs, strict=True)}, strict=True)


def _assert_same_function(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    """Eval outputs, train outputs (same dropout masks) and gradients, parameter by parameter, agree."""
    for train in (False, True):
        outputs = []
        for model in (ours, theirs):
            model.train(train)
            model.zero_grad()
            torch.manual_seed(7)
            out = model(x.clone())
            if train:
                out.square().sum().backward()
            outputs.append(out)
        torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-9, atol=1e-9)
    pairs = zip(ours.parameters(), theirs.parameters(), strict=True)
    for index, (a, b) in enumerate(pairs):
        assert a.grad is not None and b.grad is not None, index
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-8, atol=1e-9, msg=f"gradient of parameter {index}")
