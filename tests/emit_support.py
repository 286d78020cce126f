"""Helpers for the source back end's tests: import an emitted file, compare it with the live module."""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path
from types import ModuleType

import torch
from torch import nn
from torch_helpers import randomize

import resnet_gen as rg
from resnet_gen.emit.source import emit_source

_DIR = Path(tempfile.mkdtemp(prefix="resnet_gen_emitted_"))
# Each test process writes its imported files here; the folder goes when the process ends.
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)
# Live modules that stand where the emitted file has its own class (the block classes, the model).
LIVE_CONTAINERS = {"ResidualBlock", "ResNet", "FeatureResNet", "SegmentationResNet"}


def import_source(source: str, module_name: str) -> ModuleType:
    """Import ``source`` as a fresh module named ``module_name`` (from a file, as a user would)."""
    path = _DIR / f"{module_name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclass-free, but torch.jit needs the module importable
    spec.loader.exec_module(module)
    return module


@cache
def emitted_catalog_module(name: str) -> ModuleType:
    """The emitted file of catalog spec ``name``, imported."""
    return import_source(emit_source(rg.lower(rg.load_spec(name)), f"specs/{name}.yaml"), f"emitted_{name}")


_counter = iter(range(1_000_000))


def emitted_model(spec: rg.Spec) -> nn.Module:
    """A fresh instance of the emitted model for any spec (overrides included)."""
    module = import_source(emit_source(rg.lower(spec)), f"emitted_{spec.name}_{next(_counter)}")
    factory = getattr(module, spec.name)
    model = factory()
    assert isinstance(model, nn.Module)
    return model


def assert_same_structure(live: nn.Module, ours: nn.Module) -> None:
    """Same state_dict keys in the same order with the same shapes and dtypes, the same buffers
    (persistent or not), the same module tree (names in order) with the same classes."""
    theirs_state, ours_state = live.state_dict(), ours.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, tensor in theirs_state.items():
        assert ours_state[key].shape == tensor.shape, key
        assert ours_state[key].dtype == tensor.dtype, key
    assert [name for name, _ in ours.named_buffers()] == [name for name, _ in live.named_buffers()]
    assert [(n, p.requires_grad) for n, p in ours.named_parameters()] == [
        (n, p.requires_grad) for n, p in live.named_parameters()
    ]
    live_modules = dict(live.named_modules())
    ours_modules = dict(ours.named_modules())
    for name, module in ours_modules.items():
        assert name in live_modules, f"emitted module {name!r} is not in the live module"
        live_class = type(live_modules[name]).__name__
        if live_class not in LIVE_CONTAINERS:
            assert type(module).__name__ == live_class, name
    assert list(ours_modules) == list(live_modules), "the live module has modules the emitted one leaves out"


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Every parameter and buffer (non-persistent ones too) of ``source`` into ``target``, by name."""
    tensors = dict(source.named_parameters()) | dict(source.named_buffers())
    targets = dict(target.named_parameters()) | dict(target.named_buffers())
    assert sorted(tensors) == sorted(targets)
    with torch.no_grad():
        for name, tensor in tensors.items():
            targets[name].copy_(tensor)


def assert_same_outputs(live: nn.Module, ours: nn.Module, x: torch.Tensor, run=None) -> None:  # type: ignore[no-untyped-def]
    """Bit-identical outputs in eval and train mode (dropout and drop path draw the same masks
    from the same seed), and after a train step the same running statistics."""
    run = run or (lambda model, data: model(data))
    for train in (False, True):
        live.train(train)
        ours.train(train)
        with torch.no_grad():
            torch.manual_seed(1234)
            expected = run(live, x.clone())
            torch.manual_seed(1234)
            got = run(ours, x.clone())
        if isinstance(expected, (list, tuple)):  # feature maps; (logits, mask) of a multitask head
            assert type(got).__name__ == type(expected).__name__ and len(got) == len(expected)
            pairs = list(zip(got, expected, strict=True))
        else:
            pairs = [(got, expected)]
        for a, b in pairs:
            assert a.shape == b.shape
            assert torch.equal(a, b), f"train={train}: max difference {(a - b).abs().max().item()}"
    ours_state = ours.state_dict()
    for key, tensor in live.state_dict().items():
        if not tensor.is_meta:  # parts of a network not materialised for this comparison
            assert torch.equal(ours_state[key], tensor), f"{key} differs after a train-mode pass"


def materialize(module: nn.Module, seed: int) -> None:
    """A module built on the meta device made real: float64, random values."""
    module.to_empty(device="cpu")
    module.double()
    randomize(module, seed)
