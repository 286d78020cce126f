"""timm's ResNet family (``timm.models.resnet``): every registered architecture as a spec, proven.

For each of timm 1.0.31's 81 models, one test id each:
- the plan's parameter count equals the spec's reference, and the plan's parameters and MACs
  equal torch's count of timm's model (on the meta device); that they equal torch's count of our
  own built module is proven for every shipped spec, these included, in ``test_catalog_counts.py``;
- timm's state_dict and ours have the same keys with the same shapes, and each loads strictly into
  the other;
- on timm's weights, randomised and loaded strictly into ours, the two compute the same function
  in float64 (the ten torchvision names: against torchvision, in ``test_torchvision_ten.py``): eval outputs on a 1x3x64x64 input (a 2x2 map in the last stage; 32x32 for blur-pooled
  nets), train outputs and gradients on 2x3x32x32 inputs. Nets deeper than 20 blocks or over 50M parameters (the
  101-layer and deeper nets, the wide and 32x8d+ ones) get this check on a shallow twin instead
  (blocks 2, 1, 1, 1: timm's entrypoint with ``layers`` overridden against the spec with
  ``stages[i].blocks`` overridden), plus one float32 eval forward (1x3x32x32) of the full-depth net
  with shared weights (our module holds timm's tensors themselves), to keep the suite's time and
  memory small.
Then: timm's zero-init of the last norms (on a few nets small enough to initialise for real), its drop-path rule and classifier dropout, and the
messages the new spec options give when misused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import timm
import torch
from torch import nn
from torch_helpers import count_macs, count_params, fill_from_pool

from resnet_gen import build, catalog
from resnet_gen.compile import load_spec
from resnet_gen.errors import SpecError
from resnet_gen.plan import Plan, lower
from resnet_gen.plan.layers import BlurPool
from resnet_gen.spec.model import Spec

TIMM_NAMES = timm.list_models(module="resnet")
# The ten architectures torchvision ships under the same names keep torchvision as their reference.
TORCHVISION_NAMES = {
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
}
FULL_DEPTH_MAX_PARAMS = 50_000_000
FULL_DEPTH_MAX_BLOCKS = 20
TWIN_BLOCKS = (2, 1, 1, 1)  # two blocks in the first stage: an identity shortcut is exercised too


def _randomize_state(model: nn.Module, seed: int = 0) -> None:
    """Random values for everything in the state_dict (not non-persistent buffers such as a blur
    filter, which are constants), scaled so activations stay moderate through deep nets; laid out
    from one pool of draws (fresh draws were a fifth of a float64 check)."""
    fill_from_pool(model.state_dict().values(), seed)


def test_catalog_covers_every_timm_resnet() -> None:
    assert len(TIMM_NAMES) == 81, "timm 1.0.31 registers 81 models in timm.models.resnet"
    missing = sorted(set(TIMM_NAMES) - set(catalog.catalog_names()))
    assert not missing, f"no spec for {missing}"


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_spec_names_its_reference(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    assert spec.reference is not None
    expected = f"torchvision.models.{name}" if name in TORCHVISION_NAMES else f"timm.models.resnet.{name}"
    assert spec.reference.source == expected
    # With test_counts_and_state_dict_layout_match_timm below (plan == timm's count): the reference is timm's count.
    assert spec.reference.params == lower(spec).params
    if name not in TORCHVISION_NAMES:
        text = catalog.catalog_path(name).read_text(encoding="utf-8")
        assert "\nextends: " in f"\n{text}" and "\nfamily: " in f"\n{text}", (
            "a short spec: extends a parent, sets family"
        )


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_counts_and_state_dict_layout_match_timm(name: str) -> None:
    # One meta-device build of timm's model serves both checks. torch's count of our own module
    # is held to the plan for every shipped spec in test_catalog_counts.py; counting it here
    # again would only double the time.
    plan = lower(load_spec(name))
    with torch.device("meta"):
        theirs = timm.create_model(name)
        ours = build(plan)
    assert plan.params == count_params(theirs)
    assert plan.macs == count_macs(theirs, plan.input_channels, plan.input_size)
    our_shapes = {key: tuple(value.shape) for key, value in ours.state_dict().items()}
    their_shapes = {key: tuple(value.shape) for key, value in theirs.state_dict().items()}
    assert sorted(our_shapes) == sorted(their_shapes)
    assert our_shapes == their_shapes
    # Strict loads both ways (on the meta device they check keys and shapes and copy nothing).
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)


def _materialized(build_on_meta: Callable[[], nn.Module], dtype: torch.dtype) -> nn.Module:
    """A module allocated without initialisation (its weights get random values anyway)."""
    with torch.device("meta"):
        model = build_on_meta().to(dtype)
    model = model.to_empty(device="cpu")
    for module in model.modules():
        if hasattr(module, "init_non_persistent_buffers"):  # the blur filters: constants, not weights
            module.init_non_persistent_buffers()
    return model


def _pair(plan: Plan, name: str, dtype: torch.dtype, **timm_args: object) -> tuple[nn.Module, nn.Module]:
    """(ours, timm's) with timm's weights randomised and loaded strictly into ours."""
    theirs = _materialized(lambda: timm.create_model(name, **timm_args), dtype)
    ours = _materialized(lambda: build(plan), dtype)
    _randomize_state(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def _float64_check(plan: Plan, name: str, **timm_args: object) -> None:
    ours, theirs = _pair(plan, name, torch.float64, **timm_args)
    generator = torch.Generator().manual_seed(1)
    # torch runs float64 convs with one channel per group (the blur filters) channel by channel on
    # the CPU, which is slow: blur-pooled nets take their eval check at 32x32 too.
    side = 32 if any(isinstance(layer, BlurPool) for layer in plan.layers) else 64
    x = torch.randn(1, 3, side, side, dtype=torch.float64, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x), rtol=0, atol=1e-10)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64, generator=generator)
    _assert_same_training_step(ours, theirs, x)


def _assert_same_training_step(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, seed: int = 7) -> torch.Tensor:
    """Train-mode outputs and every gradient agree (the same seed before each, for random layers)."""
    outputs = []
    for model in (ours, theirs):
        model.train()
        model.zero_grad()
        torch.manual_seed(seed)
        out = model(x.clone())
        out.square().sum().backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-10)
    their_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        their_grad = their_params[key].grad
        assert p.grad is not None and their_grad is not None, key
        # allclose in one pass: assert_close's report costs more than the backward on big layers.
        if not torch.allclose(p.grad, their_grad, rtol=1e-8, atol=1e-10):
            torch.testing.assert_close(p.grad, their_grad, rtol=1e-8, atol=1e-10, msg=key)
    return outputs[0]


def _twin_overrides(spec: Spec) -> dict[str, object]:
    """``--set`` overrides giving each stage ``TWIN_BLOCKS`` blocks (and as many explicit widths)."""
    overrides: dict[str, object] = {}
    for index, (stage, blocks) in enumerate(zip(spec.stages, TWIN_BLOCKS, strict=True)):
        overrides[f"stages[{index}].blocks"] = blocks
        if stage.inner_channels is not None:
            overrides[f"stages[{index}].inner_channels"] = [list(widths) for widths in stage.inner_channels[:blocks]]
    return overrides


def _float32_forward_check(plan: Plan, name: str) -> None:
    theirs = _materialized(lambda: timm.create_model(name), torch.float32)
    _randomize_state(theirs)
    with torch.device("meta"):
        ours = build(plan)
    # Ours takes timm's tensors themselves (assign): the full-depth net's weights are held once
    # (1.9 GB for resnext101_32x32d instead of twice that); only the blur filters are its own.
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    for module in ours.modules():
        if hasattr(module, "init_non_persistent_buffers"):
            module.to_empty(device="cpu")
            module.init_non_persistent_buffers()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs.eval()(x)
        got = ours.eval()(x)
    assert torch.isfinite(expected).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


# The ten torchvision names are the same architectures in timm; their float64 parity (eval, train,
# gradients, at full depth) is proven against torchvision itself in test_torchvision_ten.py.
@pytest.mark.parametrize("name", [name for name in TIMM_NAMES if name not in TORCHVISION_NAMES])
def test_same_function_as_timm(name: str) -> None:
    spec = load_spec(name)
    plan = lower(spec)
    if len(plan.blocks) <= FULL_DEPTH_MAX_BLOCKS and plan.params <= FULL_DEPTH_MAX_PARAMS:
        _float64_check(plan, name)
        return
    _float32_forward_check(plan, name)
    twin = lower(load_spec(name, overrides=_twin_overrides(spec)))
    _float64_check(twin, name, layers=TWIN_BLOCKS)


def _zero_norm_weights(model: nn.Module) -> set[str]:
    return {
        key for key, p in model.named_parameters() if key.endswith(".weight") and p.dim() == 1 and not p.detach().any()
    }


# One of each block arrangement (basic, bottleneck, mixed, grouped with SE, anti-aliased, pruned),
# small enough to initialise for real; the torchvision-named spec keeps torchvision's init.
ZERO_INIT_CASES = [
    "resnet10t",
    "resnet14t",
    "test_resnet",
    "seresnext26t_32x4d",
    "resnetblur18",
    "ecaresnet50d_pruned",
    "resnet18",
]


@pytest.mark.parametrize("name", ZERO_INIT_CASES)
def test_initialisation_zeroes_the_norms_timm_zeroes(name: str) -> None:
    """timm's zero_init_last zeroes each block's last norm (and its pruned nets rebuild theirs)."""
    spec = load_spec(name)
    ours = build(spec)
    zeroed = _zero_norm_weights(timm.create_model(name))
    assert zeroed or name == "ecaresnet50d_pruned"
    assert _zero_norm_weights(ours) == (zeroed if spec.init.zero_init_residual else set())
    plan = lower(spec)
    expected = {f"{block.path}.{block.zero_init}.weight" for block in plan.blocks} if plan.zero_init_residual else set()
    assert _zero_norm_weights(ours) == expected


def test_drop_path_and_classifier_dropout_follow_timm() -> None:
    """Stochastic depth at timm's linear rate per block, and dropout before the classifier: with the
    same seed, train outputs and gradients agree."""
    theirs = timm.create_model("resnet26d", drop_path_rate=0.2, drop_rate=0.25).double()
    spec = load_spec("resnet26d", overrides={"drop_path": 0.2, "head.dropout": 0.25})
    plan = lower(spec)
    ours = build(plan).double()
    their_rates = [
        float(block.drop_path.drop_prob) if block.drop_path is not None else 0.0
        for stage in (theirs.layer1, theirs.layer2, theirs.layer3, theirs.layer4)
        for block in stage
    ]
    assert [block.drop_path for block in plan.blocks] == pytest.approx(their_rates, abs=1e-15)
    assert their_rates[0] == 0.0 and their_rates[-1] == pytest.approx(0.2)
    _randomize_state(theirs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    trained = _assert_same_training_step(ours, theirs, x)
    torch.manual_seed(8)
    assert not torch.equal(trained, ours(x.clone())), "a different seed must drop different paths"


def test_stage_block_options_merge_over_the_network_block(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "block: {type: bottleneck, groups: 32, width_per_group: 4, attention: {type: eca, kernel: 5}}\n"
        "stages:\n"
        "  - {blocks: 1, width: 64}\n"
        "  - {blocks: 1, width: 64, stride: 2, block: {type: basic}}\n"
        "  - {blocks: 1, width: 64, stride: 2, block: {attention: {kernel: 7}}}\n"
        "  - {blocks: 1, width: 64, stride: 2, block: {attention: se}}\n"
    )
    spec = load_spec(path)
    basic, kernel7, squeeze = spec.block_for(1), spec.block_for(2), spec.block_for(3)
    # Kind options are not inherited: a basic block has no groups of its own, and plans none.
    assert (basic.type, basic.resolved_expansion, "groups" in type(basic).model_fields) == ("basic", 1, False)
    assert basic.attention is not None and basic.attention.kernel == 5
    assert (kernel7.groups, kernel7.attention) == (32, spec.block.attention.model_copy(update={"kernel": 7}))
    assert squeeze.attention is not None and (squeeze.attention.type, squeeze.attention.kernel) == ("se", 0)
    plan = lower(spec)
    assert [block.type for block in plan.blocks] == ["bottleneck", "basic", "bottleneck", "bottleneck"]
    assert [block.groups for block in plan.blocks] == [32, 1, 32, 32]
    assert [block.attention for block in plan.blocks] == ["eca", "eca", "eca", "se"]


BAD_OPTIONS = {
    "aa_with_preactivation": (
        "anti_alias: blur\nblock: {order: pre}\nstages: [{blocks: 1, width: 8}]\n",
        "bad.yaml:1:1: anti_alias: anti_alias applies to post-activation blocks (block.order: post) only",
    ),
    "aa_with_stride_on_1x1": (
        "anti_alias: avg\nblock: {type: bottleneck, stride_on: 1x1}\nstages: [{blocks: 1, width: 8}]\n",
        "bad.yaml:1:1: anti_alias: anti_alias needs bottlenecks that stride in the 3x3 (stride_on: 3x3);"
        " stages[0] strides in the 1x1",
    ),
    "avg_aa_filter_size": (
        "anti_alias: {type: avg, filter_size: 5}\nstages: [{blocks: 1, width: 8}]\n",
        "bad.yaml:1:1: anti_alias: filter_size applies to blur anti-aliasing only; avg is a fixed 2x2 average pool",
    ),
    "se_ratio_and_reduction": (
        "block: {attention: {type: se, reduction: 4, ratio: 0.25}}\nstages: [{blocks: 1, width: 8}]\n",
        "bad.yaml:1:9: block.attention: give either reduction or ratio (ratio = 1 / reduction), not both",
    ),
    "eca_even_kernel": (
        "block: {attention: {type: eca, kernel: 4}}\nstages: [{blocks: 1, width: 8}]\n",
        "bad.yaml:1:9: block.attention: eca kernel must be odd, or 0 to pick it from the channels (got 4)",
    ),
    "inner_channels_count": (
        "block: {type: bottleneck}\nstages:\n  - {blocks: 2, width: 8, inner_channels: [[4, 4]]}\n",
        "bad.yaml:3:27: stages[0].inner_channels: needs one entry per block (2), got 1",
    ),
    "inner_channels_shape": (
        "block: {type: bottleneck}\nstages:\n  - {blocks: 1, width: 8, inner_channels: [[4]]}\n",
        "bad.yaml:3:44: stages[0].inner_channels[0]: each entry is the [conv1, conv2] widths of a bottleneck; got [4]",
    ),
    "reduce_first_breaks_groups": (
        "block: {type: bottleneck, groups: 4, width_per_group: 4, reduce_first: 8}\nstages:\n  - {blocks: 1, width: 16}\n",
        "bad.yaml:3:17: stages[0].width: reduce_first 8 leaves the first conv 0 channels, which must be >= 1 and"
        " divisible by groups 4",
    ),
    "reduce_first_empties_a_basic_block": (
        "block: {type: basic, reduce_first: 16}\nstages:\n  - {blocks: 1, width: 8}\n",
        "bad.yaml:3:17: stages[0].width: reduce_first 16 leaves the first conv 0 channels, which must be >= 1 and"
        " divisible by groups 1",
    ),
    "stage_changes_order": (
        "stages:\n  - {blocks: 1, width: 8, block: {order: pre}}\n",
        "bad.yaml:2:35: stages[0].block.order: a stage cannot change the activation order; the network's block.order is post",
    ),
    "tiered_stem_too_narrow": (
        "stem: {type: deep_tiered, deep_width: 2}\nstages: [{blocks: 1, width: 8}]\n",
        "bad.yaml:1:1: stem: a deep_tiered stem needs deep_width >= 4 (its first conv has 3 * (deep_width // 4) channels); got 2",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_misused_options_give_one_located_line(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = BAD_OPTIONS[case]
    (tmp_path / "bad.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec("bad.yaml")
    assert str(caught.value) == expected


def test_avg_anti_aliasing_needs_sizes_the_strides_divide() -> None:
    """timm's 2x2 average pool floors odd sizes where the shortcut's pool rounds up: at 112 pixels
    timm's resnetaa50d fails in its last stage, and our plan says so before anything is built."""
    with pytest.raises(SpecError, match=r"layer4\.0:? the branch gives a 3x3 map but the shortcut 4x4"):
        lower(load_spec("resnetaa50d", overrides={"input.size": 112}))
    with torch.device("meta"), pytest.raises(RuntimeError, match=r"\[1, 2048, 3, 3\]"):
        timm.create_model("resnetaa50d")(torch.zeros(1, 3, 112, 112))
    assert lower(load_spec("resnetaa50d", overrides={"input.size": 128})).blocks[-1].out_size == (4, 4)
