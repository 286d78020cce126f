"""The live back end's blocks: each ``ResidualBlock``'s forward is its plan's steps written out as
code, one module call per line. Held here to the steps' meaning (a reference loop over the plan's
layer groups, written out in the test), to TorchScript, to pickling, and to its own state_dict."""

from __future__ import annotations

import copy
import pickle
import re

import pytest
import torch
from torch import nn

import resnet_gen as rg
from resnet_gen.live.build import ResidualBlock, forward_source
from resnet_gen.plan import BlockPlan

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")

# One of each step: pre-activation with a projection that reads it, Fig. 4(b)'s norm after the
# addition, the post activation, drop path, squeeze-excite, a tied stage's scaled branch.
VARIANTS = {
    "cifar_resnet110_pre": ["stages[0].blocks=2", "stages[1].blocks=2", "stages[2].blocks=2"],
    "cifar_resnet110_bn_after_add": ["stages[0].blocks=2", "stages[1].blocks=2", "stages[2].blocks=2"],
    "cifar_resnet20": ["block.attention=se", "drop_path=0.2"],
    "cifar_resnet56_tied": [],
    "resnet26d": [],
}


def _reference(block: nn.Module, plan: BlockPlan, x: torch.Tensor) -> torch.Tensor:
    """The steps run as ``resnet_gen.choices`` defines them, by looking each module up by name."""

    def run(layers: tuple[object, ...], value: torch.Tensor) -> torch.Tensor:
        for name in dict.fromkeys(layer.path.split(".")[0] for layer in layers):  # type: ignore[attr-defined]
            value = block.get_submodule(name)(value)
        return value

    shortcut = preact = x
    for step in plan.steps:
        if step.op == "fork":
            shortcut = x
        elif step.op == "preact":
            x = preact = run(plan.preact, x)
        elif step.op == "shortcut":
            shortcut = run(plan.shortcut, preact if step.reads == "preact" else shortcut)
        elif step.op == "branch":
            x = run(plan.branch, x)
        elif step.op == "drop_path" and plan.drop_path:
            x = block.get_submodule("drop_path")(x)
        elif step.op == "scale":
            assert plan.step_size is not None
            x = x * plan.step_size
        elif step.op == "add":
            x = x + shortcut
        elif step.op == "after_add":
            x = run(plan.after_add, x)
        elif step.op == "activation":
            x = block.get_submodule("act_out")(x)
    return x


def _blocks(name: str) -> list[tuple[BlockPlan, ResidualBlock]]:
    plan = rg.lower(rg.load_spec(name, VARIANTS[name]))
    torch.manual_seed(0)
    model = rg.build(plan)
    pairs = []
    for stage in plan.stages:
        for index, block in enumerate(stage.blocks):
            module = model.get_submodule(f"{stage.path}.{index}")  # a tied stage's one block is its 0 too
            assert isinstance(module, ResidualBlock)
            pairs.append((block, module))
    return pairs


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_each_live_block_runs_its_steps_and_scripts(name: str) -> None:
    torch.manual_seed(1)
    for plan, block in _blocks(name):
        block.eval()
        x = torch.randn(2, plan.in_channels, *plan.in_size)
        with torch.no_grad():
            out = block(x)
            torch.testing.assert_close(out, _reference(block, plan, x), rtol=0, atol=0)
            scripted = torch.jit.script(block)
            assert torch.equal(scripted(x), out), plan.path
        assert list(scripted.state_dict()) == list(block.state_dict())
        again = pickle.loads(pickle.dumps(block))
        copied = copy.deepcopy(block)
        with torch.no_grad():
            assert torch.equal(again(x), out) and torch.equal(copied(x), out)


def test_the_forward_is_one_module_call_per_layer_in_the_steps_order() -> None:
    """A pre-activation block with a projection: the shortcut reads the pre-activated input, the
    projection runs after the branch (torchvision's order), nothing is looked up by name."""
    plan, block = next((plan, block) for plan, block in _blocks("cifar_resnet110_pre") if plan.shortcut and plan.preact)
    source = forward_source(plan)
    assert "_modules" not in source and "getattr" not in source
    calls = re.findall(r"(\w+) = self\.(\w+)\((\w+)\)", source)
    preact = [name for name in dict.fromkeys(layer.path.split(".")[0] for layer in plan.preact)]
    branch = [name for name in dict.fromkeys(layer.path.split(".")[0] for layer in plan.branch)]
    shortcut = [name for name in dict.fromkeys(layer.path.split(".")[0] for layer in plan.shortcut)]
    assert [name for _, name, _ in calls] == [*preact, *branch, *shortcut]
    assert ("shortcut", shortcut[0], "preact") in calls
    assert block.steps_source == source
    assert type(block).__name__ == "ResidualBlock"
