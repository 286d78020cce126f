"""timm's ResNeSt family (``timm.models.resnest``): every registered architecture as a spec, proven
as the other timm nets are (see ``test_family_timm_resnet``): counts equal to timm's (and to torch's
count of our module, in ``test_catalog_counts``),
state_dicts that load strictly both ways, and the same function in float64 (eval outputs, train
outputs and gradients; a shallow twin of the deep nets, plus a float32 forward at full depth).
Then the split attention's own rules: timm's zero-init of the last norm, and the options' messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_family_timm_resnet as checks
import timm
import torch
from torch import nn
from torch_helpers import count_macs, count_params

from resnet_gen import build, catalog
from resnet_gen.compile import load_spec
from resnet_gen.errors import SpecError
from resnet_gen.plan import lower

TIMM_NAMES = timm.list_models(module="resnest")


def test_catalog_covers_every_timm_resnest() -> None:
    assert len(TIMM_NAMES) == 8, "timm 1.0.31 registers 8 models in timm.models.resnest"
    assert not sorted(set(TIMM_NAMES) - set(catalog.catalog_names()))


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_spec_names_its_reference(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name and spec.block.type == "resnest"
    assert spec.reference is not None and spec.reference.source == f"timm.models.resnest.{name}"
    # With test_counts_and_state_dict_layout_match_timm below (plan == timm's count): the reference is timm's count.
    assert spec.reference.params == lower(spec).params
    # timm's default input size for the net (256 to 416 for the "e" nets).
    assert (spec.input.channels, *spec.input.hw) == timm.get_pretrained_cfg(name).input_size


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_counts_and_state_dict_layout_match_timm(name: str) -> None:
    # One meta-device build of timm's model serves both checks; torch's count of our own module:
    # test_catalog_counts.py, for every shipped spec.
    plan = lower(load_spec(name))
    with torch.device("meta"):
        theirs = timm.create_model(name)
        ours = build(plan)
    assert plan.params == count_params(theirs)
    assert plan.macs == count_macs(theirs, plan.input_channels, plan.input_size)
    our_shapes = {key: tuple(value.shape) for key, value in ours.state_dict().items()}
    their_shapes = {key: tuple(value.shape) for key, value in theirs.state_dict().items()}
    assert our_shapes == their_shapes
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_same_function_as_timm(name: str) -> None:
    spec = load_spec(name)
    plan = lower(spec)
    if len(plan.blocks) <= checks.FULL_DEPTH_MAX_BLOCKS and plan.params <= checks.FULL_DEPTH_MAX_PARAMS:
        checks._float64_check(plan, name)
        return
    checks._float32_forward_check(plan, name)
    twin = lower(load_spec(name, overrides=checks._twin_overrides(spec)))
    checks._float64_check(twin, name, layers=checks.TWIN_BLOCKS)


def test_initialisation_zeroes_the_last_norm_as_timm() -> None:
    def zeroed(model: nn.Module) -> set[str]:
        return {key for key, p in model.named_parameters() if key.endswith(".weight") and p.dim() == 1 and not p.any()}

    theirs = zeroed(timm.create_model("resnest14d"))
    assert theirs == {f"layer{i}.0.bn3.weight" for i in range(1, 5)}
    assert zeroed(build(load_spec("resnest14d"))) == theirs


MISUSES = {
    "radix on a bottleneck": (
        "block: {type: bottleneck, radix: 4}",
        "block.radix: radix applies to resnest blocks only",
    ),
    "pre-activation resnest": ("block: {type: resnest, order: pre}", "block.order: a resnest block is timm's"),
    "resnest with SE": ("block: {type: resnest, attention: se}", "block.attention: a resnest block is timm's"),
    "group norm": ("block: {type: resnest}\nnorm: {type: group, groups: 32}", "norm.type: a resnest block's split"),
    "radix not dividing": ("block: {type: resnest, radix: 3}", "block.radix: the split-attention conv has 64 input"),
}


@pytest.mark.parametrize("case", sorted(MISUSES))
def test_misused_options_give_one_located_line(case: str, tmp_path: Path) -> None:
    text, expected = MISUSES[case]
    path = tmp_path / "net.yaml"
    path.write_text(f"extends: resnet50d\n{text}\n", encoding="utf-8")
    with pytest.raises(SpecError) as raised:
        lower(load_spec(str(path)))
    message = str(raised.value)
    assert expected in message and "\n" not in message.strip(), message
