"""The inference form's CPU fast path, ``fuse_for_cpu``: conv + ReLU and conv + residual addition +
ReLU as one oneDNN call each (PyTorch's private ``mkldnn._convolution_pointwise`` operators), with
the plain conv / add / ReLU as its fallback. Both paths are held to torchvision's models (folded
from the same weights) and to each other, to 1e-5 relative in float32."""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import Any

import pytest
import torch
import torchvision
from emit_support import import_source
from torch import nn
from torch_helpers import randomize

import resnet_gen as rg
from resnet_gen.emit.source import emit_source

_count = itertools.count()


def inference_module(name: str, overrides: list[str] | None = None) -> ModuleType:
    spec = rg.load_spec(name, overrides or [])
    return import_source(emit_source(rg.lower(spec), target="inference"), f"fusion_{spec.name}_{next(_count)}")


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got - expected).abs().max() / expected.abs().max()).item()


class CountingOps:
    """Stands in for the module's oneDNN operator packet and counts the calls that reach it."""

    def __init__(self, real: Any) -> None:
        self.calls = {"default": 0, "binary": 0}
        self._real = real

    def __getattr__(self, overload: str) -> Any:
        def call(*args: Any) -> Any:
            self.calls[overload] += 1
            return getattr(self._real, overload)(*args)

        return call


def fused_calls(model: nn.Module) -> int:
    graph = getattr(model, "graph", None)
    assert graph is not None, "fuse_for_cpu returned the plain model"
    return sum(1 for node in graph.nodes if getattr(node.target, "__name__", "") == "_fused_conv")


# torchvision nets, the convs each fuses (every conv followed by a ReLU, plus each block's last conv
# with its addition: resnet18 has 1 + 8 x 2, a bottleneck net 1 + 16 x 3), and of those, the additions.
TORCHVISION_CASES = [("resnet18", 17, 8), ("resnet50", 49, 16), ("resnext50_32x4d", 49, 16)]


@pytest.mark.parametrize(("name", "convs", "additions"), TORCHVISION_CASES)
def test_both_paths_match_torchvision(name: str, convs: int, additions: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's model with random weights and norm statistics, folded into the inference form:
    the fused path (counted as it reaches oneDNN) and the plain fallback both give its outputs."""
    reference = getattr(torchvision.models, name)()
    randomize(reference, seed=5)
    reference.eval()
    module = inference_module(name)
    model = getattr(module, name)(checkpoint=reference.state_dict())
    fused = module.fuse_for_cpu(model)
    assert fused_calls(fused) == convs
    assert fused.state_dict().keys() == model.state_dict().keys()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = reference(x)
        plain = model(x)
        counter = CountingOps(module._CONV_POINTWISE)
        monkeypatch.setattr(module, "_CONV_POINTWISE", counter)
        fast = fused(x)
        monkeypatch.setattr(module, "_CONV_POINTWISE", None)  # the fallback: plain conv, add, ReLU
        fallback = fused(x)
    assert counter.calls == {"default": convs - additions, "binary": additions}
    for got in (plain, fast, fallback):
        assert relative_error(got, expected) < 1e-5
    assert relative_error(fast, fallback) < 1e-5


# Catalog nets whose layouts differ: deep stem and avg-down, SE, pre-activation (addition without
# a ReLU after it), zero-pad shortcuts at CIFAR size, feature maps of a backbone.
CATALOG_CASES = [
    ("resnet50d", [], 96),
    ("seresnet50", [], 96),
    ("resnetv2_50d", [], 96),
    ("cifar_resnet20", [], 32),
    ("resnet18", ["backbone.features_only=true"], 96),
]


@pytest.mark.parametrize(
    ("name", "overrides", "size"), CATALOG_CASES, ids=[c[0] + ("+" * bool(c[1])) for c in CATALOG_CASES]
)
def test_fast_and_fallback_paths_agree(
    name: str, overrides: list[str], size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = inference_module(name, overrides)
    model = getattr(module, name)()
    randomize(model, seed=2)
    fused = module.fuse_for_cpu(model)
    assert fused_calls(fused) > 0
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        plain = model(x)
        fast = fused(x)
        monkeypatch.setattr(module, "_CONV_POINTWISE", None)
        fallback = fused(x)
    maps = [[out] if isinstance(out, torch.Tensor) else list(out) for out in (plain, fast, fallback)]
    assert len(maps[0]) == len(maps[1]) == len(maps[2])
    for reference, *others in zip(*maps, strict=True):
        for got in others:
            assert got.shape == reference.shape
            assert relative_error(got, reference) < 1e-5


def test_weights_stay_shared_and_other_dtypes_take_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fused module reads the same parameters (loading a state_dict into it changes its outputs
    as it changes the plain model's), and float64 never reaches oneDNN's fused calls."""
    module = inference_module("resnet18")
    model = module.resnet18()
    fused = module.fuse_for_cpu(model)
    trained = module.resnet18()
    randomize(trained, seed=4)
    fused.load_state_dict(trained.state_dict())
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    counter = CountingOps(module._CONV_POINTWISE)
    monkeypatch.setattr(module, "_CONV_POINTWISE", counter)
    with torch.inference_mode():
        assert relative_error(model(x), trained(x)) < 1e-6
        wide = fused.double()(x.double())
        assert counter.calls == {"default": 0, "binary": 0}
        assert relative_error(wide, trained.double()(x.double())) < 1e-12


def test_without_the_operators_or_a_trace_the_model_comes_back_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    module = inference_module("resnet18")
    model = module.resnet18()
    monkeypatch.setattr(module, "_CONV_POINTWISE", None)
    assert module.fuse_for_cpu(model) is model
    monkeypatch.undo()

    class Untraceable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
                return torch.relu(self.conv(x))
            return self.conv(x)

    untraceable = Untraceable()
    assert module.fuse_for_cpu(untraceable) is untraceable


def test_only_relu_nets_carry_the_fast_path() -> None:
    relu = emit_source(rg.lower(rg.load_spec("resnet50")), target="inference")
    assert "def fuse_for_cpu" in relu and '"fuse_for_cpu"' in relu
    silu = emit_source(rg.lower(rg.load_spec("resnet50", ["activation=silu"])), target="inference")
    assert "fuse_for_cpu" not in silu and "import operator" not in silu
    assert "fuse_for_cpu" not in emit_source(rg.lower(rg.load_spec("resnet50")))  # not in the training form


def onednn_graph_groups() -> int:
    """The oneDNN Graph partitions in the graph TorchScript ran last."""
    return torch.jit.last_executed_optimized_graph().str().count("prim::oneDNNFusionGroup")


# Basic, bottleneck, grouped (ResNeXt) against torchvision; pre-activation, SE, a deep stem with
# avg-down and a CIFAR net with zero-pad shortcuts against the plain form they were frozen from.
FREEZE_CASES = [
    ("resnet18", 64, True),
    ("resnet50", 64, True),
    ("resnext50_32x4d", 64, True),
    ("resnetv2_50d", 64, False),
    ("seresnet50", 64, False),
    ("resnet50d", 64, False),
    ("cifar_resnet20", 32, False),
]


@pytest.mark.parametrize(("name", "size", "torchvision_net"), FREEZE_CASES, ids=[c[0] for c in FREEZE_CASES])
def test_frozen_path_matches_the_plain_form(name: str, size: int, torchvision_net: bool) -> None:
    """``freeze_for_cpu`` compiles oneDNN Graph partitions for the example's shape and gives the
    plain form's outputs (and torchvision's, folded from the same weights); inputs of another
    shape still give them; the process-wide switch is off again afterwards."""
    module = inference_module(name)
    if torchvision_net:
        reference = getattr(torchvision.models, name)()
        randomize(reference, seed=6)
        reference.eval()
        model = getattr(module, name)(checkpoint=reference.state_dict())
    else:
        model = getattr(module, name)()
        randomize(model, seed=6)
        reference = model
    generator = torch.Generator().manual_seed(7)
    example = torch.randn(2, 3, size, size, generator=generator)
    assert not torch.jit.onednn_fusion_enabled()
    frozen = module.freeze_for_cpu(model, example)
    # the graph itself, or inside the module that runs tiny work (the CIFAR net) on one thread
    assert isinstance(getattr(frozen, "frozen", frozen), torch.jit.ScriptModule)
    assert not torch.jit.onednn_fusion_enabled()
    x = torch.randn(2, 3, size, size, generator=generator)
    other_shape = torch.randn(3, 3, size, size, generator=generator)
    with torch.inference_mode():
        fast = frozen(x)
        assert onednn_graph_groups() > 0
        expected, plain = reference(x), model(x)
        assert relative_error(fast, expected) < 1e-5
        assert relative_error(fast, plain) < 1e-5
        assert relative_error(frozen(other_shape), model(other_shape)) < 1e-5


def test_frozen_path_falls_back_to_the_fused_eager_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TorchScript's oneDNN Graph switch, for a float64 example, or for a model the tracer
    cannot follow, ``freeze_for_cpu`` gives what ``fuse_for_cpu`` gives, with the same outputs."""
    module = inference_module("resnet18")
    model = module.resnet18()
    randomize(model, seed=8)
    example = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    frozen = module.freeze_for_cpu(model, example)
    wide_model = module.resnet18().double()
    wide_model.load_state_dict(model.state_dict())
    wide = module.freeze_for_cpu(wide_model, example.double())
    assert fused_calls(wide) == 17
    monkeypatch.delattr(torch.jit, "enable_onednn_fusion")
    fallback = module.freeze_for_cpu(model, example)
    assert fused_calls(fallback) == 17
    with torch.inference_mode():
        assert relative_error(fallback(example), frozen(example)) < 1e-5
        assert relative_error(wide(example.double()), wide_model(example.double())) < 1e-12
    monkeypatch.undo()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the tracer cannot follow this model")

    monkeypatch.setattr(torch.jit, "trace", refuse)
    assert fused_calls(module.freeze_for_cpu(model, example)) == 17
    assert not torch.jit.onednn_fusion_enabled()  # set back even when the trace fails


class ThreadsSeen(nn.Module):
    """Stands in for a frozen graph: records torch's thread count during each call, then runs it."""

    def __init__(self, frozen: nn.Module) -> None:
        super().__init__()
        self.frozen = frozen
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.get_num_threads())
        return self.frozen(x)


def test_tiny_work_runs_on_one_thread_with_the_same_outputs() -> None:
    """A CIFAR net at batch 1 (about 2 million multiply-accumulates per conv) is frozen and run on
    one thread, torch's count set back after every call, with the outputs of the graph frozen for
    torch's two threads and of the plain form (1e-5 relative); at batch 16 (about 35 million per
    conv) the graph keeps torch's count and is the ScriptModule itself."""
    module = inference_module("cifar_resnet20")
    model = module.cifar_resnet20()
    randomize(model, seed=10)
    generator = torch.Generator().manual_seed(11)
    tiny, big = torch.randn(1, 3, 32, 32, generator=generator), torch.randn(16, 3, 32, 32, generator=generator)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = module.freeze_for_cpu(model, tiny)
        assert one.threads == 1 and isinstance(one.frozen, torch.jit.ScriptModule)
        assert torch.get_num_threads() == 2
        both = module.freeze_for_cpu(model, tiny, threads=2)
        assert isinstance(both, torch.jit.ScriptModule)
        one.frozen = ThreadsSeen(one.frozen)
        with torch.inference_mode():
            fast, fast_both, plain = one(tiny), both(tiny), model(tiny)
            assert one.frozen.seen == [1] and torch.get_num_threads() == 2
            assert relative_error(fast, fast_both) < 1e-5
            assert relative_error(fast, plain) < 1e-5
            assert isinstance(module.freeze_for_cpu(model, big), torch.jit.ScriptModule)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
