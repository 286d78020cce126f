"""The emitted source honours the backbone options exactly as the live module does: the same
feature maps and ``feature_info``, the same dilations, the same frozen modules, and it exports."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn
from torch_helpers import randomize

from resnet_gen import build, load_spec
from resnet_gen.emit import emit
from resnet_gen.export import export_onnx, export_program, output_names
from resnet_gen.spec import Spec
from resnet_gen.spec.backbone import with_backbone

DEPTHS = [1, 1, 2, 2]
SIZE = 35
SMALL = [f"stages[{index}].blocks={blocks}" for index, blocks in enumerate(DEPTHS)] + [f"input.size={SIZE}"]

CASES = [
    ("resnet18", {"features_only": True, "output_stride": 8, "frozen_stages": 1}),
    ("resnet50_d", {"features_only": True, "out_indices": [0, 2, 4], "output_stride": 16}),
    ("resnetv2_50", {"features_only": True, "out_indices": [1, 3], "output_stride": 8, "frozen_stages": 2}),
    ("resnet50_d", {"output_stride": 8, "frozen_stages": 4}),  # a dilated classifier, all stages frozen
]


def _import(tmp_path: Path, spec: Spec) -> ModuleType:
    path = tmp_path / f"{spec.name}.py"
    path.write_text(emit(spec))
    loader = importlib.util.spec_from_file_location(spec.name, path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def _pair(tmp_path: Path, name: str, options: dict[str, object]) -> tuple[nn.Module, nn.Module]:
    spec = with_backbone(load_spec(name, SMALL), **options)
    live = build(spec).double()
    randomize(live)
    emitted = getattr(_import(tmp_path, spec), spec.name)().double()
    emitted.load_state_dict(live.state_dict())  # strict: the same keys
    return live, emitted


def _training(model: nn.Module) -> dict[str, bool]:
    """Train/eval mode of every module that holds tensors (the trees differ only in stateless ones)."""
    return {
        name: module.training
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))
    }


def _as_list(out: object) -> list[torch.Tensor]:
    return list(out) if isinstance(out, list) else [out]  # type: ignore[list-item]


@pytest.mark.parametrize(("name", "options"), CASES)
def test_emitted_backbone_behaves_as_live(tmp_path: Path, name: str, options: dict[str, object]) -> None:
    live, emitted = _pair(tmp_path, name, options)
    x = torch.randn(2, 3, SIZE, SIZE, dtype=torch.float64)
    for mode in (False, True):
        live.train(mode)
        emitted.train(mode)
        assert _training(emitted) == _training(live)
        with torch.no_grad():
            for a, b in zip(_as_list(emitted(x)), _as_list(live(x)), strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    frozen = sorted(n for n, p in live.named_parameters() if not p.requires_grad)
    assert sorted(n for n, p in emitted.named_parameters() if not p.requires_grad) == frozen
    assert bool(frozen) == ("frozen_stages" in options)
    if options.get("features_only"):
        assert emitted.feature_info == live.feature_info
    convs = {n: (m.stride, m.dilation) for n, m in live.named_modules() if isinstance(m, nn.Conv2d)}
    assert {n: (m.stride, m.dilation) for n, m in emitted.named_modules() if isinstance(m, nn.Conv2d)} == convs


@pytest.mark.parametrize(("name", "options"), [CASES[2], CASES[3]])
def test_emitted_backbone_exports(tmp_path: Path, name: str, options: dict[str, object]) -> None:
    live, emitted = _pair(tmp_path, name, options)
    emitted.float().eval()
    example = torch.zeros(2, 3, SIZE, SIZE)
    path = export_onnx(emitted, tmp_path / "emitted.onnx", example)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == output_names(emitted) == output_names(live)
    x = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        expected = [t.numpy() for t in _as_list(emitted(x))]
        program = export_program(emitted, example).module()
        exported = [t.numpy() for t in _as_list(program(x))]
    for got, traced, want in zip(session.run(None, {"input": x.numpy()}), exported, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
        np.testing.assert_allclose(traced, want, rtol=0, atol=1e-5)
