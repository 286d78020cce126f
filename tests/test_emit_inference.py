"""The inference form (``resnet-gen build --target inference``): batch norms folded into the convs,
channels-last, no gradients or training-only parts, and ``fold_batch_norms`` loading a training
checkpoint. Checked against torchvision's resnet50 in float32 (the deployment claim: within 1e-4
relative), against the live training-form module in float64 on every kind of layer the folding
meets, and on the meta device for every catalog spec (strict loading, exact parameter counts)."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torchvision
from conftest import CLASSIFIER_SPECS
from emit_support import import_source
from torch import nn
from torch_helpers import count_params, randomize

import resnet_gen as rg
from resnet_gen.blocks.resnest import SplitAttention
from resnet_gen.emit.source import emit_source
from resnet_gen.plan import Plan, lower
from resnet_gen.plan.inference import for_inference
from resnet_gen.plan.layers import Conv, Dropout, Layer, Norm

_count = iter(range(1_000_000))


def inference_module(spec: rg.Spec) -> ModuleType:
    return import_source(emit_source(rg.lower(spec), target="inference"), f"inference_{spec.name}_{next(_count)}")


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got - expected).abs().max() / expected.abs().max()).item()


def test_resnet50_matches_torchvision_within_1e_4() -> None:
    """The claim the inference form makes: torchvision's resnet50 weights (random, with real norm
    statistics), folded, give its outputs to 1e-4 relative in float32 at batch 8, 224x224."""
    reference = torchvision.models.resnet50()
    randomize(reference, seed=3)
    reference.eval()
    model = inference_module(rg.load_spec("resnet50")).resnet50(checkpoint=reference.state_dict())
    x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(x)
        got = model(x)
    assert got.shape == expected.shape == (8, 1000)
    assert relative_error(got, expected) < 1e-4


# One spec (with overrides) for each thing the folding meets.
FLOAT64_CASES = [
    ("resnet18", []),  # basic blocks, projection shortcut
    ("resnet50d", []),  # deep stem (a Sequential renumbered), avg-down shortcut
    ("seresnext26t_32x4d", []),  # tiered stem, grouped convs, SE
    ("ecaresnet50d_pruned", []),  # ECA, per-block widths
    ("resnetblur18", []),  # blur pools between conv and norm's neighbours
    ("resnet50_gn", []),  # group norm: nothing to fold
    ("resnetv2_50d", []),  # pre-activation with a deep stem: a conv renamed without a fold
    ("resnetv2_50x1_bit", []),  # weight-standardised convs and group norm: nothing folded
    ("resnetv2_50d_frn", []),  # filter response norm
    ("cifar_preact_resnet164", []),  # pre-activation bottlenecks, final norm
    ("cifar_resnet20", []),  # zero-pad shortcut (option A)
    ("wrn28_10_dropout", ["stages[0].blocks=1", "stages[1].blocks=1", "stages[2].blocks=1"]),  # dropout in the block
    ("resnet18", ["norm=frozen_batch"]),  # frozen batch norm
    ("resnet34", ["drop_path=0.2", "head.dropout=0.3"]),  # drop path and head dropout vanish
    ("resnet50", ["backbone.features_only=true", "backbone.out_indices=[0, 2, 4]"]),  # feature maps
    ("cifar_plain20", []),  # no shortcut
    ("resnet18_unet_seg", []),  # a segmentation decoder (its own norms kept unfolded)
]


@pytest.mark.parametrize(
    ("name", "overrides"), FLOAT64_CASES, ids=[f"{n}{'+' if o else ''}{len(o) or ''}" for n, o in FLOAT64_CASES]
)
def test_same_function_as_training_form(name: str, overrides: list[str]) -> None:
    """In float64 the folded network computes what the training form computes in eval mode."""
    spec = rg.load_spec(name, overrides)
    live = rg.build(spec).double()
    randomize(live, seed=1)
    for layer in live.modules():
        if hasattr(layer, "init_non_persistent_buffers"):  # the blur filters: constants, not weights
            layer.init_non_persistent_buffers()
    live.eval()
    module = inference_module(spec)
    model = getattr(module, spec.name)().double()  # float64 before loading, so nothing is rounded
    state = live.state_dict()
    model.load_state_dict(module.fold_batch_norms(model, state) if hasattr(module, "fold_batch_norms") else state)
    size = min(lower(spec).input_size[0], 64)
    x = torch.randn(2, spec.input.channels, size, size, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = live(x)
        got = model(x)
    pairs = list(zip(got, expected, strict=True)) if isinstance(expected, list) else [(got, expected)]
    for ours, theirs in pairs:
        assert ours.shape == theirs.shape
        assert relative_error(ours, theirs) < 1e-12


def _structure(plan_norms: int, model: nn.Module) -> None:
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    modules = list(model.modules())
    assert not any(isinstance(m, nn.Dropout) or type(m).__name__ == "DropPath" for m in modules)
    norms = [m for m in modules if isinstance(m, nn.BatchNorm2d) or type(m).__name__ == "FrozenBatchNorm2d"]
    assert len(norms) == plan_norms
    for name, p in model.named_parameters():
        if p.dim() == 4:
            assert p.is_contiguous(memory_format=torch.channels_last), name


def _sequences(plan: Plan) -> list[tuple[Layer, ...]]:
    """The runs of layers executed one after another (the folding never crosses them)."""
    return [plan.stem, plan.final] + [s for b in plan.blocks for s in (b.preact, b.branch, b.shortcut, b.after_add)]


def _conv_norm_pairs(plan: Plan) -> list[tuple[Conv, Norm]]:
    """Batch norms right after a plain conv (dropout, the identity at inference, skipped)."""
    pairs = []
    for layers in _sequences(plan):
        kept = [layer for layer in layers if not isinstance(layer, Dropout)]
        for before, after in itertools.pairwise(kept):
            if type(before) is Conv and isinstance(after, Norm) and after.type in ("batch", "frozen_batch"):
                pairs.append((before, after))
    return pairs


# Folding batch norms is a classifier's: a U-Net has GroupNorm only, and its inference form
# (eval mode, no gradients, the same weights) is tested in test_unet_emit.py.
@pytest.mark.parametrize("name", CLASSIFIER_SPECS)
def test_every_spec_loads_its_training_checkpoint(name: str) -> None:
    """On the meta device: the training form's state_dict, folded, loads strictly into the
    inference form, which has the plan's parameter count: each folded norm's parameters traded
    for its conv's bias. No batch norm that follows a conv is left, and no dropout."""
    spec = rg.load_spec(name)
    training, inference = lower(spec), for_inference(lower(spec))
    module = inference_module(spec)
    with torch.device("meta"):
        live = rg.build(spec)
        model = getattr(module, spec.name)()
    state = live.state_dict()
    if hasattr(module, "fold_batch_norms"):
        state = module.fold_batch_norms(model, state)
    model.load_state_dict(state, strict=True)
    pairs = _conv_norm_pairs(training)
    traded = sum(norm.params - (0 if conv.bias else conv.out_channels) for conv, norm in pairs)
    assert count_params(model) == inference.params == count_params(live) - traded
    assert not _conv_norm_pairs(inference)
    batch_norms = [layer for layer in training.layers if isinstance(layer, Norm) and layer.type != "group"]
    # A split-attention conv holds two batch norms of its own (bn0, bn1), kept as they are.
    inner = 2 * sum(isinstance(layer, SplitAttention) for layer in training.layers)
    _structure(len(batch_norms) - len(pairs) + inner, model)


def test_scripts_and_exports() -> None:
    """The inference form of a net with a renamed layer works with torch.jit.script and torch.export."""
    spec = rg.load_spec("resnetv2_50d")
    model = getattr(inference_module(spec), spec.name)()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        scripted = torch.jit.script(model)
        torch.testing.assert_close(scripted(x), expected)
        exported = torch.export.export(model, (x,))
        torch.testing.assert_close(exported.module()(x), expected)


def test_source_is_specialised_and_deterministic() -> None:
    spec = rg.load_spec("resnet50d")
    text = emit_source(rg.lower(spec), "specs/resnet50d.yaml", target="inference")
    assert text == emit_source(rg.lower(spec), "specs/resnet50d.yaml", target="inference")
    assert text == rg.emit(spec, "specs/resnet50d.yaml", target="inference")
    with pytest.raises(ValueError, match="target must be one of training, inference"):
        rg.emit(spec, target="deploy")
    assert "--target inference" in text.splitlines()[0]
    tree = ast.parse(text)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    # typing: Any, in the timm interface
    assert imported <= {"torch", "torch.nn.functional", "collections.abc", "operator", "typing"}
    for word in ("BatchNorm2d", "Dropout", "DropPath", "kaiming", "zero_init", "_init_weights"):
        assert word not in text, word
    # The group-normed BiT net folds nothing, so its file has no fold function.
    bit = emit_source(rg.lower(rg.load_spec("resnetv2_50x1_bit")), target="inference")
    assert "def fold_batch_norms" not in bit and "model.load_state_dict(checkpoint)" in bit


def test_build_target_inference_cli(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "resnet_gen", "build", "--target", "inference", "resnet18"]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "out" / "inference" / "resnet18.py"
    assert done.stdout.strip() == "wrote out/inference/resnet18.py"
    assert written.read_text(encoding="utf-8") == emit_source(
        rg.lower(rg.load_spec("resnet18")), "specs/resnet18.yaml", target="inference"
    )
    bad = subprocess.run([*run[:5], "deploy", "resnet18"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2
    assert "'deploy' is not one of 'training', 'inference'" in bad.stderr
    assert "Traceback" not in bad.stderr
