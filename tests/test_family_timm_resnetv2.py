"""timm's ResNetV2 family (``timm.models.resnetv2``): every registered architecture as a spec, proven.

For each model: the plan's parameter count equals timm's and the spec's reference, and its MACs
timm's (torch's count of our own built module equals the plan in ``test_catalog_counts.py``); timm's state_dict, converted with
``resnet_gen.convert.timm_resnetv2``, loads strictly into ours and ours back into timm's; and on
random weights the two compute the same function (eval and train outputs, gradients, running
statistics) in float64. The BiT giants (x2..x4 wide) are checked on the full structure plus one small float32 forward
with shared weights, to keep memory and time small.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import timm
import torch
from timm.models import _registry
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torch_helpers import count_params, randomize

from resnet_gen import build, load_spec, lower
from resnet_gen.convert.timm_resnetv2 import from_timm, key_map, to_timm
from resnet_gen.errors import SpecError
from resnet_gen.plan import Plan

TIMM_NAMES = sorted(name for name in timm.list_models() if _registry._model_to_module.get(name) == "resnetv2")
GIANTS = {"resnetv2_50x3_bit", "resnetv2_101x3_bit", "resnetv2_152x2_bit", "resnetv2_152x4_bit"}
# timm's EvoNorm and FRN compute their statistics in float32 (``x.float()``) even for float64
# inputs, while ours keep the input's precision; these two are compared in float32, where both
# compute the same way, to float32 accuracy.
FLOAT32_STATISTICS = {"resnetv2_50d_evos", "resnetv2_50d_frn"}
SIZE = 32  # the last stage is 1x1; batch 2 keeps train-mode batch statistics defined


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small convs on a shared 2-core machine run several times faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _on_meta(name: str) -> tuple[Plan, nn.Module, nn.Module]:
    plan = lower(load_spec(name))
    with torch.device("meta"):
        return plan, build(plan), timm.create_model(name)


def _macs(model: nn.Module, plan: Plan) -> int:
    x = torch.zeros(1, plan.input_channels, *plan.input_size, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(x)
    return int(counter.get_total_flops()) // 2


def test_every_timm_resnetv2_model_has_a_spec() -> None:
    assert len(TIMM_NAMES) == 20
    for name in TIMM_NAMES:
        spec = load_spec(name)
        assert spec.family == "resnetv2"
        assert spec.reference is not None and spec.reference.source == f"timm.models.resnetv2.{name}"


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_counts_match_and_state_dicts_convert_both_ways_strictly(name: str) -> None:
    # One meta-device build of each model serves both checks. torch's count of our own module is
    # held to the plan for every shipped spec in test_catalog_counts.py; here the plan meets timm's.
    plan, ours, theirs = _on_meta(name)
    spec = load_spec(name)
    assert spec.reference is not None
    assert plan.params == spec.reference.params == count_params(theirs)
    assert plan.macs == _macs(theirs, plan)
    converted = from_timm(theirs.state_dict(), plan)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in ours.state_dict().items()}
    ours.load_state_dict(converted, strict=True)
    back = to_timm(ours.state_dict(), plan)
    assert {k: v.shape for k, v in back.items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(back, strict=True)
    # The map is one-to-one: converting there and back returns every key unchanged.
    assert list(from_timm(back, plan)) == list(ours.state_dict())


def _grads_in_timm_layout(model: nn.Module, plan: Plan) -> dict[str, torch.Tensor]:
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert len(grads) == len(list(model.parameters()))
    return to_timm(grads, plan)


def _close(ours: torch.Tensor, theirs: torch.Tensor, exact: bool, what: str) -> None:
    """Equal up to rounding, measured against the tensor's scale: train-mode batch statistics over
    few values make some gradients huge, so a fixed absolute tolerance would mean nothing."""
    scale = float(theirs.detach().abs().max()) or 1.0
    tolerance = 1e-10 if exact else 1e-4
    torch.testing.assert_close(ours, theirs, rtol=0, atol=tolerance * scale, msg=what)


@pytest.mark.parametrize("name", [n for n in TIMM_NAMES if n not in GIANTS])
def test_outputs_and_gradients_match_timm(name: str) -> None:
    exact = name not in FLOAT32_STATISTICS
    dtype = torch.float64 if exact else torch.float32
    plan, ours, theirs = _on_meta(name)
    theirs = theirs.to_empty(device="cpu").to(dtype)
    _uniform_(theirs, seed=1)
    ours = ours.to_empty(device="cpu").to(dtype)
    ours.load_state_dict({k: v.clone() for k, v in from_timm(theirs.state_dict(), plan).items()}, strict=True)
    x = torch.randn(2, 3, SIZE, SIZE, dtype=dtype, generator=torch.Generator().manual_seed(2))
    for train in (False, True):
        ours.train(train)
        theirs.train(train)
        a, b = ours(x), theirs(x)
        _close(a, b, exact, f"output, train={train}")
    a.square().sum().backward()
    b.square().sum().backward()
    grads = _grads_in_timm_layout(ours, plan)
    for key, p in theirs.named_parameters():
        assert p.grad is not None, key
        _close(grads[key], p.grad, exact, f"gradient of {key}")
    # Train mode moved the running statistics the same way.
    for key, value in to_timm(ours.state_dict(), plan).items():
        _close(value, theirs.state_dict()[key], exact, key)


_POOL_SIZE = 1_000_003  # prime, so no tensor's rows or filters repeat the same values


def _uniform_(model: nn.Module, seed: int) -> None:
    """Random weights, in place. Values are drawn once into a pool and laid out at a different
    offset in each tensor: as good as fresh draws for parity, and fast for the 936M-weight giants."""
    generator = torch.Generator().manual_seed(seed)
    pool = torch.rand(_POOL_SIZE, generator=generator, dtype=torch.float64)
    offset = 0
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if not tensor.is_floating_point():
                tensor.zero_()
                continue
            flat = tensor.view(-1)
            start = 0
            while start < flat.numel():
                take = min(flat.numel() - start, _POOL_SIZE - offset)
                flat[start : start + take].copy_(pool[offset : offset + take])
                start += take
                offset = (offset + take) % _POOL_SIZE
            offset = (offset + 7919) % _POOL_SIZE
            if tensor.dim() > 1:  # conv weights around zero, scaled by their fan-in
                tensor.sub_(0.5).mul_(2.0 / max(1, tensor[0].numel()) ** 0.5)
            else:  # norm scales, shifts and statistics positive, around one
                tensor.add_(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GIANTS))
def test_giants_forward_like_timm(name: str) -> None:
    """The full-depth float32 forward, run part by part (stem, each block, final norm and head),
    each network feeding its own output on: the same computation as one whole forward, with every
    part's output compared too, while only one part's weights (at most 96M of the 936M of the
    largest) exist at a time."""
    plan, ours, theirs = _on_meta(name)
    ours.eval()
    theirs.eval()
    # (our modules, timm's modules) in forward order; the final norm and the head come after.
    parts = [(list(ours.stem), ["stem"])]
    parts += [([block.path], [f"stages.{block.stage}.blocks.{block.index}"]) for block in plan.blocks]
    a = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    b = a.clone()
    with torch.no_grad():
        for seed, (our_paths, their_paths) in enumerate(parts):
            _give_part_weights(ours, theirs, plan, our_paths, their_paths, seed)
            for path in our_paths:
                a = ours.get_submodule(path)(a)
            for path in their_paths:
                b = theirs.get_submodule(path)(b)
            _close(a, b, exact=False, what=f"output of {our_paths}")
            for path in our_paths:  # the memory goes back before the next part
                ours.get_submodule(path).to_empty(device="meta")
            for path in their_paths:
                theirs.get_submodule(path).to_empty(device="meta")
        _give_part_weights(ours, theirs, plan, [*ours.final, "fc"], ["norm", "head"], len(parts))
        for path in ours.final:
            a = ours.get_submodule(path)(a)
        a, b = ours.forward_head(a), theirs.forward_head(theirs.norm(b))
    assert torch.isfinite(a).all() and a.abs().max() > 0
    _close(a, b, exact=False, what="output")


def _give_part_weights(
    ours: nn.Module, theirs: nn.Module, plan: Plan, our_paths: list[str], their_paths: list[str], seed: int
) -> None:
    """timm's modules at ``their_paths`` get random weights; ours at ``our_paths`` take those very
    tensors (through the converter, assigned), so each weight is held once."""
    state: dict[str, torch.Tensor] = {}
    for path in their_paths:
        module = theirs.get_submodule(path).to_empty(device="cpu")
        _uniform_(module, seed=1000 * seed + len(state))
        state |= {f"{path}.{key}": value for key, value in module.state_dict().items()}
    converted = from_timm(state, plan)
    taken = 0
    for path in our_paths:
        prefix = f"{path}."
        part = {key.removeprefix(prefix): value for key, value in converted.items() if key.startswith(prefix)}
        ours.get_submodule(path).load_state_dict(part, strict=True, assign=True)
        taken += len(part)
    assert taken == len(converted), "a timm tensor found no place in our part"


def _bit_variant(name: str, **overrides: object) -> tuple[Plan, nn.Module]:
    plan = lower(load_spec(name, overrides=overrides))
    return plan, build(plan).double()


@pytest.mark.parametrize(
    ("override", "value"), [("stem.pool", "max"), ("conv.eps", 1e-6), ("conv", "plain"), ("norm.groups", 16)]
)
def test_each_bit_choice_changes_the_function(override: str, value: object) -> None:
    """The parity test above can fail: dropping any one of BiT's choices breaks agreement with timm."""
    name = "resnetv2_50x1_bit"
    theirs = timm.create_model(name).double().eval()
    randomize(theirs, seed=5)
    plan, ours = _bit_variant(name, **{override: value})
    ours.load_state_dict(from_timm(theirs.state_dict(), plan), strict=True)
    x = torch.randn(1, 3, SIZE, SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert not torch.allclose(ours.eval()(x), theirs(x), rtol=0, atol=1e-6)


def test_width_factor_scales_stem_and_stages() -> None:
    plan = lower(load_spec("resnetv2_50x3_bit"))
    assert plan.stem_channels == 192
    assert [stage.out_channels for stage in plan.stages] == [768, 1536, 3072, 6144]
    assert [block.mid_channels for block in (stage.blocks[0] for stage in plan.stages)] == [192, 384, 768, 1536]


def test_fused_norms_replace_the_activation() -> None:
    """EvoNorm-S0 and FRN apply their own nonlinearity: no separate activation module remains."""
    for name in ("resnetv2_50d_evos", "resnetv2_50d_frn"):
        model = build(lower(load_spec(name)))
        assert not [m for m in model.modules() if isinstance(m, nn.ReLU)], name
    plan = lower(load_spec("resnetv2_50d_evos"))
    assert plan.params == 25_591_368  # three vectors (weight, bias, v) per norm


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"conv": {"eps": 1e-8}}, "eps applies to weight_standardized convs only"),
        ({"norm.groups": 7}, "evonorm_s0 norm needs every normalised channel count divisible by groups 7"),
        ({"width_factor": 0}, "width_factor"),
        ({"stem.pool": "fixed"}, "stem.pool"),
        ({"stem.type": "deep_tiered"}, "evonorm_s0 norm needs .* but the stem has 24"),
    ],
)
def test_bad_choices_are_reported(override: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec("resnetv2_50d_evos", overrides=override)


def test_converter_rejects_what_timm_resnetv2_cannot_hold() -> None:
    plan = lower(load_spec("resnetv2_50"))
    with pytest.raises(KeyError, match="not a tensor of this network"):
        from_timm({"stages.0.blocks.0.se.fc1.weight": torch.zeros(1)}, plan)
    with pytest.raises(ValueError, match="no place for"):
        key_map(lower(load_spec("resnetv2_50", overrides={"block.attention": "se"})))
    with pytest.raises(ValueError, match=r"maxpool\.0: timm's ResNetV2 has no place for a Conv"):
        key_map(lower(load_spec("resnetv2_50", overrides={"stem.pool": "conv"})))


def test_key_map_follows_timm_names() -> None:
    names = set(key_map(lower(load_spec("resnetv2_50d"))).values())
    assert {"stem.conv1", "stem.norm1", "stem.conv2", "stem.norm2", "stem.conv3", "norm", "head.fc"} <= names
    assert "stages.0.blocks.0.downsample.conv" in names and "stages.3.blocks.2.norm3" in names


def test_post_activation_resnetv2_matches_timm_preact_false() -> None:
    """timm registers no ``preact=False`` model, but its ResNetV2 supports it (ViT-hybrid backbones):
    BiT-R50x1 with post-activation blocks against ``ResNetV2(preact=False)``, through the converter."""
    from functools import partial

    from timm.layers import StdConv2d
    from timm.models.resnetv2 import ResNetV2

    plan = lower(load_spec("resnetv2_50x1_bit", overrides={"block.order": "post"}))
    assert [layer.path for layer in plan.final] == []  # no final norm without pre-activation
    with torch.device("meta"):
        ours = build(plan)
        theirs = ResNetV2(layers=[3, 4, 6, 3], preact=False, stem_type="fixed", conv_layer=partial(StdConv2d, eps=1e-8))
    assert count_params(ours) == plan.params == count_params(theirs)
    theirs = theirs.to_empty(device="cpu").double()
    _uniform_(theirs, seed=7)
    ours = ours.to_empty(device="cpu").double()
    ours.load_state_dict({k: v.clone() for k, v in from_timm(theirs.state_dict(), plan).items()}, strict=True)
    x = torch.randn(2, 3, SIZE, SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    for train in (False, True):
        _close(ours.train(train)(x), theirs.train(train)(x), True, f"output, train={train}")
