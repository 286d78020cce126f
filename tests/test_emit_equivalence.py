"""The emitted source and the live back end build the same network, for every shipped spec and for
the spec options the catalog does not use (drop path, backbones, other norms and activations).

* Structure (all specs, built on the meta device): state_dict keys in order, shapes, dtypes, buffers,
  module tree and classes.
* Whole networks up to ``WHOLE_PARAMS`` parameters and ``WHOLE_MACS`` at the test input: with the same float64 weights their outputs are
  bit-identical in eval and train mode (and their running statistics after it).
* Initialisation: from the same seed both back ends create the same weights (order, kaiming, zero-init)
  for networks covering every layer kind, and for every spec option below.
* Larger networks: the stem, every distinct block (by module configuration) and the final norm and
  head are compared the same way one module at a time, so nothing the size of the whole network is
  ever held twice and the deepest nets stay quick.
"""

from __future__ import annotations

from functools import cache

import pytest
import torch
from conftest import CLASSIFIER_SPECS
from emit_support import (
    assert_same_outputs,
    assert_same_structure,
    copy_weights,
    emitted_catalog_module,
    emitted_model,
    materialize,
)
from torch import nn

import resnet_gen as rg
from resnet_gen.plan import Plan
from resnet_gen.plan.layers import BlurPool

# Networks compared whole (in float64, eval and train); larger or deeper ones module by module.
WHOLE_PARAMS = 40_000_000
WHOLE_MACS = 120_000_000
BATCH = 2


@cache
def _plan(name: str) -> Plan:
    """Lowered once per process: choosing WHOLE at collection lowers every spec."""
    return rg.lower(rg.load_spec(name))


def _small_side(plan: Plan) -> int:
    """A small input that still leaves every stage a map of at least 1x1, or 2x2 for a blur pool's
    reflect padding: the network's total stride (twice it with blur pools), and at least 16."""
    final = plan.stages[-1].out_size if plan.stages else plan.stem_out_size
    reduction = plan.input_size[0] // final[0]
    if any(isinstance(layer, BlurPool) for layer in plan.layers):
        reduction *= 2
    return min(plan.input_size[0], max(16, reduction))


def _test_macs(plan: Plan) -> float:
    """MACs of one image at the small test input."""
    return plan.macs * (_small_side(plan) / plan.input_size[0]) ** 2


def _pair_on_meta(name: str) -> tuple[nn.Module, nn.Module]:
    spec = rg.load_spec(name)
    module = emitted_catalog_module(name)
    with torch.device("meta"):
        return rg.build(spec), getattr(module, name)()


# The U-Nets' emitted files are held to their live modules in test_unet_emit.py.
@pytest.mark.parametrize("name", CLASSIFIER_SPECS)
def test_same_structure(name: str) -> None:
    live, ours = _pair_on_meta(name)
    assert_same_structure(live, ours)


WHOLE = [
    name for name in CLASSIFIER_SPECS if _plan(name).params <= WHOLE_PARAMS and _test_macs(_plan(name)) <= WHOLE_MACS
]
LARGE = [name for name in CLASSIFIER_SPECS if name not in WHOLE]


def _randomize_vectors(model: nn.Module, seed: int = 0) -> None:
    """Random norm weights, biases and running statistics (the convs keep their random init), so
    every norm, bias and statistic counts in the comparison."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dim() == 1 and tensor.is_floating_point():
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator, dtype=torch.float64))


@pytest.mark.parametrize("name", WHOLE)
def test_same_outputs(name: str) -> None:
    spec = rg.load_spec(name)
    plan = rg.lower(spec)
    live = rg.build(spec).double()
    _randomize_vectors(live)
    with torch.device("meta"):
        ours = getattr(emitted_catalog_module(name), name)()
    ours.to_empty(device="cpu").double()
    copy_weights(live, ours)
    side = _small_side(plan)
    x = torch.randn(BATCH, plan.input_channels, side, side, dtype=torch.float64)
    assert_same_outputs(live, ours, x)


# Built from the same seed, both back ends create and initialise the same tensors in the same order.
SAME_INIT = [
    "resnet50",  # torchvision's kaiming init
    "test_resnet",  # zero-init residual over two block classes
    "wrn16_8",  # pre-activation, bare stem
    "cifar_resnet20",  # zero-pad shortcuts
    "resnetblur18",  # blur filter buffers
    "seresnext26t_32x4d",  # SE convs, deep stem
    "ecaresnet26t",  # ECA's 1-D conv
    "resnetv2_50x1_bit",  # weight-standardised convs, group norm
    "resnetv2_50d_evos",  # EvoNorm parameters
    "resnetv2_50d_frn",  # FRN parameters
]


@pytest.mark.parametrize("name", SAME_INIT)
def test_same_initial_weights(name: str) -> None:
    spec = rg.load_spec(name)
    torch.manual_seed(0)
    live = rg.build(spec)
    torch.manual_seed(0)
    ours = getattr(emitted_catalog_module(name), name)()
    ours_state = ours.state_dict()
    for key, tensor in live.state_dict().items():
        assert torch.equal(ours_state[key], tensor), f"{key}: initialised differently"
    for (key, tensor), (_, mine) in zip(live.named_buffers(), ours.named_buffers(), strict=True):
        assert torch.equal(mine, tensor), f"buffer {key} differs"


def _run_top(names: list[str]):  # type: ignore[no-untyped-def]
    def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = model.get_submodule(name)(x)
        return x

    return run


@pytest.mark.parametrize("name", LARGE)
def test_large_network_module_by_module(name: str) -> None:
    plan = _plan(name)
    live, ours = _pair_on_meta(name)
    stem = list(dict.fromkeys(layer.path.split(".")[0] for layer in plan.stem))
    final = list(dict.fromkeys(layer.path.split(".")[0] for layer in plan.final))
    head = [n for n in ("global_pool", "head_dropout", "fc") if isinstance(getattr(ours, n, None), nn.Module)]
    for names in (stem, final, head):
        for part in names:
            materialize(live.get_submodule(part), seed=len(part))
            ours.get_submodule(part).to_empty(device="cpu").double()
            copy_weights(live.get_submodule(part), ours.get_submodule(part))
    side = _small_side(plan)
    x = torch.randn(BATCH, plan.input_channels, side, side, dtype=torch.float64)
    assert_same_outputs(live, ours, x, _run_top(stem))
    features = torch.randn(BATCH, plan.feature_channels, 2, 2, dtype=torch.float64)
    assert_same_outputs(live, ours, features, lambda model, data: model.forward_head(_run_top(final)(model, data)))

    seen: set[str] = set()
    for block in plan.blocks:
        live_block, our_block = live.get_submodule(block.path), ours.get_submodule(block.path)
        config = repr(live_block) + repr(our_block)
        if config in seen:
            continue  # the same module configuration as a block already compared
        seen.add(config)
        materialize(live_block, seed=len(seen))
        our_block.to_empty(device="cpu").double()
        copy_weights(live_block, our_block)
        # 2x2 is enough for every layer (a stride-2 block gives 1x1); blur pools' reflect padding needs more.
        side = 2 + 2 * max((layer.padding for layer in block.layers if isinstance(layer, BlurPool)), default=0)
        x = torch.randn(BATCH, block.in_channels, side, side, dtype=torch.float64)
        assert_same_outputs(live_block, our_block, x)
        live_block.to_empty(device="meta")  # give the memory back before the next block
        our_block.to_empty(device="meta")
    assert len(seen) >= len(plan.stages)


# Spec options the catalog does not use (or uses rarely), each on a small network.
VARIANTS = {
    "drop path": ("resnet18", ["drop_path=0.2"]),
    "drop path, pre-activation, dropout": ("wrn16_8", ["drop_path=0.1", "block.dropout=0.25"]),
    "head dropout, max pool": ("resnet18", ["head.dropout=0.3", "head.pool=max"]),
    "no classifier": ("resnet18", ["head.num_classes=0"]),
    "no head": ("cifar_resnet20", ["head=null"]),
    "zero-init, basic": ("resnet18", ["init.zero_init_residual=true"]),
    "zero-init, pre-activation": ("resnetv2_18", ["init.zero_init_residual=true"]),
    "default init": ("resnet18", ["init.scheme=default"]),
    "frozen batch norm": ("resnet18", ["norm=frozen_batch"]),
    "group norm": ("resnet18", ["norm={type: group, groups: 16}"]),
    "silu, se": ("resnet18", ["activation=silu", "block.attention=se"]),
    "gelu, eca": ("resnet18", ["activation=gelu", "block.attention=eca"]),
    "projection on every block": ("cifar_resnet20", ["shortcut=projection_all"]),
    "output stride 8, avg-down": ("resnet26d", ["backbone.output_stride=8"]),
    "output stride 16, blur": ("resnetblur18", ["backbone.output_stride=16"]),
    "features only": ("resnet18", ["backbone.features_only=true", "backbone.out_indices=[0, 2, 3]"]),
    "features of the stem only": ("resnet50d", ["backbone.features_only=true", "backbone.out_indices=[0]"]),
    "frozen stages": ("resnet18", ["backbone.frozen_stages=2"]),
    "frozen pre-activation net": ("resnetv2_18", ["backbone.frozen_stages=4"]),
    "stride on the 1x1": ("resnet26", ["block.stride_on=1x1"]),
    "avg anti-aliasing": ("resnet26t", ["anti_alias=avg"]),
    "3x3 shortcut": ("resnet26", ["shortcut={type: projection, kernel: 3}"]),
}


@pytest.mark.parametrize("label", list(VARIANTS))
def test_spec_options_match_the_live_module(label: str) -> None:
    name, overrides = VARIANTS[label]
    spec = rg.load_spec(name, overrides)
    plan = rg.lower(spec)
    torch.manual_seed(0)
    live = rg.build(spec)
    torch.manual_seed(0)
    ours = emitted_model(spec)
    assert_same_structure(live, ours)
    for key, tensor in live.state_dict().items():
        assert torch.equal(ours.state_dict()[key], tensor), f"{key}: initialised differently"
    live.double()
    ours.double()
    side = _small_side(plan)
    x = torch.randn(BATCH, plan.input_channels, side, side, dtype=torch.float64)
    assert_same_outputs(live, ours, x)
    if plan.frozen:
        # Frozen parts hold no batch norm, dropout or drop-path: nothing there depends on the mode.
        kinds = {type(m).__name__ for part in plan.frozen for m in ours.get_submodule(part).modules()}
        assert not kinds & {"BatchNorm2d", "Dropout", "DropPath"} and "FrozenBatchNorm2d" in kinds
        assert not any(p.requires_grad for part in plan.frozen for p in ours.get_submodule(part).parameters())
    if plan.features:
        assert ours.feature_info == [dict(info) for info in live.feature_info]  # type: ignore[attr-defined]
