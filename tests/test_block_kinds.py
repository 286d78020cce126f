"""Block kinds live in one place: a kind registered here, in the test, validates, lowers, builds,
emits, draws and reports with no other change to the package; and the forward every kind runs
(``BlockPlan.steps``) is He et al. 2016's five residual units (Fig. 4), checked against the
paper's figure as written out below and against a plain transcription of each unit's forward."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
import torch
from emit_support import copy_weights, import_source
from pydantic import Field
from torch import nn
from torch_helpers import randomize

import resnet_gen as rg
from resnet_gen.blocks import registry
from resnet_gen.blocks.registry import BlockKind, Branch, BranchInputs, Widths
from resnet_gen.diagram import diagram
from resnet_gen.emit import emit_source
from resnet_gen.plan import BlockPlan
from resnet_gen.plan import layers as L
from resnet_gen.spec.model import BlockSpec

# -- a kind of the test's own: one kxk conv and its norm per block ---------------------------------


class SingleConvBlockSpec(BlockSpec):
    type: Literal["single"] = "single"
    kernel: Literal[1, 3] = Field(default=3, description="`single` only: the conv's kernel size.")


class SingleConvKind(BlockKind):
    name = "single"
    options = SingleConvBlockSpec
    class_name = "SingleConvBlock"
    title = "single-conv block"
    inner_convs = 1
    inner_shape = "[conv1] width of a single-conv block"
    default_expansion = 1

    def widths(self, block: BlockSpec, width: int) -> Widths:
        return Widths(width, width, first_is_mid=True, mid_is_out=True)

    def lower(self, block: BlockSpec, inputs: BranchInputs) -> Branch:
        assert isinstance(block, SingleConvBlockSpec)
        make = inputs.make
        conv = make.conv("conv1", inputs.in_channels, inputs.out_channels, block.kernel, inputs.stride, inputs.size)
        return Branch((conv, *make.norm("bn1", inputs.out_channels)), conv.out_size, (), (("conv1", "out_channels"),))


@pytest.fixture
def single_kind() -> Iterator[None]:
    registry.register(SingleConvKind)
    yield
    registry.unregister("single")


SINGLE_SPEC = """\
name: single_conv_net
input: {channels: 3, size: 16}
stem: {type: conv, width: 8, kernel: 3, stride: 1, pool: none}
block: {type: single, kernel: 3}
stages:
  - {blocks: 2, width: 8}
  - {blocks: 2, width: 16, stride: 2, block: {kernel: 1}}
head: {num_classes: 5}
"""


def _load(tmp_path: Path, text: str, name: str = "net") -> rg.Spec:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return rg.load_spec(path)


class SingleReference(nn.Module):
    """The test kind's network written out by hand: relu(bn(conv(x)) + shortcut(x)) per block."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.blocks = nn.ModuleList()
        self.projections = nn.ModuleList()
        for cin, cout, kernel, stride in ((8, 8, 3, 1), (8, 8, 3, 1), (8, 16, 1, 2), (16, 16, 1, 1)):
            self.blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout)
                )
            )
            self.projections.append(
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if cin != cout or stride != 1
                else nn.Identity()
            )
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        for branch, shortcut in zip(self.blocks, self.projections, strict=True):
            x = torch.relu(branch(x) + shortcut(x))
        return self.fc(x.mean((2, 3)))


def _reference_weights(live: nn.Module, reference: SingleReference) -> None:
    state = live.state_dict()
    ours = {
        "conv1.weight": state["conv1.weight"],
        **{f"bn1.{k}": state[f"bn1.{k}"] for k in ("weight", "bias", "running_mean", "running_var")},
        "fc.weight": state["fc.weight"],
        "fc.bias": state["fc.bias"],
    }
    for number, path in enumerate(("layer1.0", "layer1.1", "layer2.0", "layer2.1")):
        ours[f"blocks.{number}.0.weight"] = state[f"{path}.conv1.weight"]
        for key in ("weight", "bias", "running_mean", "running_var"):
            ours[f"blocks.{number}.1.{key}"] = state[f"{path}.bn1.{key}"]
        if f"{path}.downsample.0.weight" in state:
            ours[f"projections.{number}.0.weight"] = state[f"{path}.downsample.0.weight"]
            for key in ("weight", "bias", "running_mean", "running_var"):
                ours[f"projections.{number}.1.{key}"] = state[f"{path}.downsample.1.{key}"]
    reference.load_state_dict(ours, strict=False)
    missing = set(reference.state_dict()) - set(ours)
    assert all(key.endswith("num_batches_tracked") for key in missing), missing


def test_a_kind_registered_in_the_test_validates_builds_emits_draws_and_reports(
    single_kind: None, tmp_path: Path
) -> None:
    spec = _load(tmp_path, SINGLE_SPEC)
    assert spec.block.type == "single" and spec.block_for(1).kernel == 1  # type: ignore[attr-defined]
    plan = rg.lower(spec)
    assert [block.type for block in plan.blocks] == ["single"] * 4
    assert [layer.path for layer in plan.blocks[2].branch] == ["conv1", "bn1"]

    # Live: the function a hand-written network computes, in float64.
    torch.manual_seed(0)
    live = rg.build(spec).double().eval()
    randomize(live)
    reference = SingleReference().double().eval()
    _reference_weights(live, reference)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(live(x), reference(x), rtol=0, atol=1e-12)

    # Emitted: a class named by the kind, the same keys and the same function.
    source = emit_source(plan)
    assert "class SingleConvBlock(nn.Module):" in source
    module = import_source(source, "emitted_single_conv_net")
    emitted = module.single_conv_net().double().eval()
    assert list(emitted.state_dict()) == list(live.state_dict())
    copy_weights(live, emitted)
    torch.testing.assert_close(emitted(x), live(x), rtol=0, atol=1e-12)

    # Drawn and reported from the same plan.
    blocks = diagram(spec, "blocks").source
    assert "post-activation single" in blocks and "3×3 conv" in blocks and "1×1 conv" in blocks
    assert "single_conv_net" in diagram(spec, "macro").source
    details = [row.detail for row in rg.analyze(spec).rows if row.name.startswith("layer")]
    assert details[:2] == ["[3x3 8]", "[1x1 16]"]


def test_options_of_a_registered_kind_are_its_own(single_kind: None, tmp_path: Path) -> None:
    with pytest.raises(rg.SpecError) as caught:
        _load(tmp_path, "block: {type: basic, kernel: 3}\nstages: [{blocks: 1, width: 8}]\n", "bad")
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].endswith("/bad.yaml:1:22: block.kernel: kernel applies to single blocks only")
    with pytest.raises(rg.SpecError) as caught:
        _load(tmp_path, "block: {type: single, groups: 2}\nstages: [{blocks: 1, width: 8}]\n", "bad2")
    assert "block.groups: groups applies to bottleneck and resnest blocks only" in caught.value.problems[0]
    # A stage that changes type does not inherit the kind's own options.
    spec = _load(
        tmp_path,
        "block: {type: single, kernel: 1}\nstages: [{blocks: 1, width: 8, block: {type: basic}}]\n",
        "mixed",
    )
    assert spec.block_for(0).type == "basic"
    with pytest.raises(rg.SpecError) as caught:
        _load(tmp_path, "block: {type: singel}\nstages: [{blocks: 1, width: 8}]\n", "typo")
    assert caught.value.problems[0].endswith("(got 'singel'); did you mean 'single'?")


def test_kinds_are_known_only_to_the_registry() -> None:
    """Outside resnet_gen/blocks/, no code compares a block type with a kind's name."""
    package = Path(rg.__file__).parent
    names = [kind.name for kind in registry.kinds()]
    offenders = []
    for path in package.rglob("*.py"):
        if path.parent.name == "blocks":
            continue
        text = path.read_text(encoding="utf-8")
        for name in names:
            for pattern in (f'== "{name}"', f'!= "{name}"', f'"{name}":', f'in ("{name}"'):
                if pattern in text:
                    offenders.append(f"{path.relative_to(package)}: {pattern}")
    assert offenders == []


# -- He et al. 2016, Fig. 4: the five units, as the figure draws them ------------------------------

# Each unit's residual function F and what follows the addition, read off Fig. 4 (a) to (e):
# "weight" is a conv, "BN" and "ReLU" as in the figure, "addition" the sum with the shortcut.
FIG4_BASIC = {
    "post": ["weight", "BN", "ReLU", "weight", "BN", "addition", "ReLU"],
    "bn_after_add": ["weight", "BN", "ReLU", "weight", "addition", "BN", "ReLU"],
    "relu_before_add": ["weight", "BN", "ReLU", "weight", "BN", "ReLU", "addition"],
    "relu_preact": ["ReLU", "weight", "BN", "ReLU", "weight", "BN", "addition"],
    "pre": ["BN", "ReLU", "weight", "BN", "ReLU", "weight", "addition"],
}
# The bottleneck units repeat the figure's pattern over three weight layers.
FIG4_BOTTLENECK = {
    "post": ["weight", "BN", "ReLU"] * 2 + ["weight", "BN", "addition", "ReLU"],
    "bn_after_add": ["weight", "BN", "ReLU"] * 2 + ["weight", "addition", "BN", "ReLU"],
    "relu_before_add": ["weight", "BN", "ReLU"] * 3 + ["addition"],
    "relu_preact": ["ReLU", "weight", "BN"] * 3 + ["addition"],
    "pre": ["BN", "ReLU", "weight"] * 3 + ["addition"],
}
WORDS = {L.Conv: "weight", L.Norm: "BN", L.Act: "ReLU"}


def _unit_spec(tmp_path: Path, kind: str, order: str) -> rg.Spec:
    text = f"""\
name: unit_{kind}_{order}
input: {{channels: 3, size: 8}}
stem: {{type: conv, width: 16, kernel: 3, stride: 1, pool: none}}
block: {{type: {kind}, order: {order}}}
stages:
  - {{blocks: 2, width: 16}}
  - {{blocks: 1, width: 32, stride: 2}}
head: {{num_classes: 3}}
"""
    return _load(tmp_path, text, f"unit_{kind}_{order}")


def _figure_words(block: BlockPlan) -> list[str]:
    """The block's steps read as the figure draws a unit (shortcut steps are the other path)."""
    words: list[str] = []
    for step in block.steps:
        if step.op in ("preact", "branch", "after_add"):
            words += [WORDS[type(layer)] for layer in getattr(block, step.op)]
        elif step.op == "add":
            words.append("addition")
        elif step.op == "activation":
            words.append("ReLU")
    return words


@pytest.mark.parametrize("kind", ["basic", "bottleneck"])
@pytest.mark.parametrize("order", list(FIG4_BASIC))
def test_steps_are_the_units_of_fig4(kind: str, order: str, tmp_path: Path) -> None:
    plan = rg.lower(_unit_spec(tmp_path, kind, order))
    expected = (FIG4_BASIC if kind == "basic" else FIG4_BOTTLENECK)[order]
    for block in plan.blocks:
        assert _figure_words(block) == expected, block.path
        ops = [step.op for step in block.steps]
        # The shortcut forks from the block's input, except that a projection of a unit that starts
        # with an activation reads that activation's output (He et al. 2016, Sec. 4.1 and Fig. 5).
        projects = bool(block.shortcut)
        starts_with_activation = order in ("relu_preact", "pre")
        assert ops[0] == "fork"
        if projects:  # run last, as torchvision runs its downsample: nothing holds it during the branch
            shortcut = block.steps[ops.index("shortcut")]
            assert ops.index("shortcut") == ops.index("add") - 1
            assert shortcut.reads == ("preact" if starts_with_activation else "fork")
        else:
            assert "shortcut" not in ops


def _unit_reference(order: str, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One basic unit of Fig. 4, computed with the block's own tensors but written out by hand."""

    def bn(name: str, t: torch.Tensor) -> torch.Tensor:
        norm = block.get_submodule(name)
        return nn.functional.batch_norm(t, norm.running_mean, norm.running_var, norm.weight, norm.bias, False)

    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        layer = block.get_submodule(name)
        return nn.functional.conv2d(t, layer.weight, None, layer.stride, layer.padding)

    relu = torch.relu
    has_projection = hasattr(block, "downsample")
    if order == "post":
        out = bn("bn2", conv("conv2", relu(bn("bn1", conv("conv1", x)))))
        skip = bn("downsample.1", conv("downsample.0", x)) if has_projection else x
        return relu(out + skip)
    if order == "bn_after_add":
        out = conv("conv2", relu(bn("bn1", conv("conv1", x))))
        skip = bn("downsample.1", conv("downsample.0", x)) if has_projection else x
        return relu(bn("bn2", out + skip))
    if order == "relu_before_add":
        out = relu(bn("bn2", conv("conv2", relu(bn("bn1", conv("conv1", x))))))
        skip = bn("downsample.1", conv("downsample.0", x)) if has_projection else x
        return out + skip
    if order == "relu_preact":
        pre = relu(x)
        out = bn("bn2", conv("conv2", relu(bn("bn1", conv("conv1", pre)))))
        return out + (conv("downsample.0", pre) if has_projection else x)
    pre = relu(bn("bn1", x))
    out = conv("conv2", relu(bn("bn2", conv("conv1", pre))))
    return out + (conv("downsample.0", pre) if has_projection else x)


@pytest.mark.parametrize("order", list(FIG4_BASIC))
def test_live_blocks_compute_the_units_of_fig4(order: str, tmp_path: Path) -> None:
    model = rg.build(_unit_spec(tmp_path, "basic", order)).double().eval()
    randomize(model, seed=3)
    x = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    for path in ("layer1.0", "layer2.0"):  # an identity shortcut, then a projection
        block = model.get_submodule(path)
        inputs = x if path == "layer1.0" else torch.randn(2, 16, 8, 8, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(block(inputs.clone()), _unit_reference(order, block, inputs), rtol=0, atol=1e-12)


# -- emitted names come from where the widths come from --------------------------------------------


def _bottleneck_class(source: str) -> str:
    start = source.index("class Bottleneck(nn.Module):")
    return source[start : source.index("\n    def forward", start)]


def test_emitted_widths_are_named_after_the_planners_widths() -> None:
    """senet154 (reduce_first 2) and ecaresnet50d_pruned (explicit inner widths): each conv's
    output is the width the planner gave it, as the paper's and timm's code name them."""
    senet = _bottleneck_class(emit_source(rg.lower(rg.load_spec("senet154"))))
    assert "self.conv1 = nn.Conv2d(in_channels, first_channels, kernel_size=1" in senet
    assert "first_channels, mid_channels, kernel_size=3" in senet
    assert "self.conv3 = nn.Conv2d(mid_channels, out_channels, kernel_size=1" in senet
    pruned = _bottleneck_class(emit_source(rg.lower(rg.load_spec("ecaresnet50d_pruned"))))
    assert "self.conv1 = nn.Conv2d(in_channels, first_channels, kernel_size=1" in pruned
    assert "self.conv2 = nn.Conv2d(first_channels, mid_channels, kernel_size=3" in pruned
    # The plan's widths are timm's: senet154's layer1 has 128 channels in its first conv, 256 in the 3x3.
    block = rg.lower(rg.load_spec("senet154")).blocks[0]
    assert (block.first_channels, block.mid_channels, block.out_channels) == (128, 256, 256)


def test_no_generated_file_names_an_argument_after_a_layer() -> None:
    """No constructor argument is a layer's field (``conv1_out_channels``) where a width of the
    block's rule is what it holds."""
    generated = Path(rg.__file__).parent.parent / "generated"
    for path in sorted(generated.glob("**/*.py")):
        text = path.read_text(encoding="utf-8")
        assert "conv1_out_channels" not in text and "conv2_out_channels" not in text, path.name


# -- a kind added as a user adds one: four files of the package -------------------------------------

SCRATCH = Path(__file__).parent / "block_kind_scratch"
SCALED_SPEC = """\
name: scaled_net
input: {channels: 3, size: 16}
stem: {type: conv, width: 8, kernel: 3, stride: 1, pool: none}
block: {type: scaled, init: 0.5}
stages:
  - {blocks: 1, width: 8}
  - {blocks: 1, width: 16, stride: 2}
head: {num_classes: 5}
"""


def _package_files(root: Path) -> dict[str, bytes]:
    """The package's files and the templates, by path under ``root`` (caches aside)."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for folder in ("resnet_gen", "templates")
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_a_new_kind_with_its_own_layer_takes_four_files(tmp_path: Path) -> None:
    """Issue 14's claim, on a copy of the package: a kind with a layer torch has not got is its
    block module, its layer's runtime module, its template and one line in KIND_MODULES. With only
    those four changes the copy validates, lowers, reports, builds, emits and draws the kind's
    spec; live and emitted networks compute the forward written out in the script (float64), and
    the emitted file holds the runtime class as written."""
    import json
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    copy = tmp_path / "checkout"
    for folder in ("resnet_gen", "templates", "specs"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SCRATCH / "scaled.py", copy / "resnet_gen" / "blocks" / "scaled.py")
    shutil.copy(SCRATCH / "channel_scale.py", copy / "resnet_gen" / "runtime" / "channel_scale.py")
    shutil.copy(SCRATCH / "ChannelScale.py.j2", copy / "templates" / "layers" / "ChannelScale.py.j2")
    registry_file = copy / "resnet_gen" / "blocks" / "registry.py"
    text = registry_file.read_text(encoding="utf-8")
    assert text.count("KIND_MODULES = (\n") == 1
    registry_file.write_text(
        text.replace("KIND_MODULES = (\n", 'KIND_MODULES = (\n    "resnet_gen.blocks.scaled",\n'), encoding="utf-8"
    )

    before, after = _package_files(ROOT), _package_files(copy)
    changed = sorted(name for name in before.keys() & after.keys() if before[name] != after[name])
    added = sorted(after.keys() - before.keys())
    assert changed == ["resnet_gen/blocks/registry.py"] and before.keys() <= after.keys()
    assert added == [
        "resnet_gen/blocks/scaled.py",
        "resnet_gen/runtime/channel_scale.py",
        "templates/layers/ChannelScale.py.j2",
    ]
    registry_diff = set(after[changed[0]].decode().splitlines()) - set(before[changed[0]].decode().splitlines())
    assert registry_diff == {'    "resnet_gen.blocks.scaled",'}

    spec_file = copy / "scaled_net.yaml"
    spec_file.write_text(SCALED_SPEC, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(SCRATCH / "run_kind.py"), str(copy), str(spec_file)],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.splitlines()[-1])
    assert found["package"] == str(copy / "resnet_gen" / "__init__.py")
    assert found["types"] == ["scaled", "scaled"]
    assert found["branch"] == ["conv1", "bn1", "scale"]
    assert found["scale_module"] == "resnet_gen.runtime.channel_scale"
    assert found["live_vs_reference"] < 1e-12 and found["emitted_vs_live"] < 1e-12
    assert found["emitted_class_is_runtime_text"] and found["emitted_block_class"] and found["emitted_init"]
    assert found["params"] == found["state_params"]
    assert found["details"] == ["[3x3 8, scale 8]", "[3x3 16, scale 16]"]
    assert found["diagram"]


def test_the_diffusion_kind_is_registered_and_refused_in_a_classifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The diffusion ResBlock is a kind like the others (the registry lists it, its options are
    validated by its own model), but it reads a time embedding, which only a U-Net has: a
    classifier that names it, for the network or for one stage, gets one located line and exit 1."""
    from resnet_gen.cli import main

    assert registry.names()[-1] == "diffusion" and registry.kind_of("diffusion").class_name == "ResBlock"
    with pytest.raises(rg.SpecError) as caught:
        _load(tmp_path, "block: {type: diffusion}\nstages: [{blocks: 1, width: 8}]\n")
    assert caught.value.problems[0].endswith(
        "net.yaml:1:9: block.type: a diffusion ResBlock reads a time embedding, which only a U-Net has; write a"
        " `layout: unet` spec (see specs/unet_tiny.yaml), or use basic or bottleneck here"
    )
    assert len(caught.value.problems) == 1
    text = "stages: [{blocks: 1, width: 8}, {blocks: 1, width: 16, block: {type: diffusion, time_injection: add}}]\n"
    path = tmp_path / "staged.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--no-cache", str(path)])
    code, err = exited.value.code, capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "stages[1].block.type: a diffusion ResBlock reads a time embedding" in err
    with pytest.raises(rg.SpecError, match="time_injection"):
        _load(tmp_path, "block: {type: basic, time_injection: add}\nstages: [{blocks: 1, width: 8}]\n", "foreign")
