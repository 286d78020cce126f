"""``resnet-gen export --format int8``: the int8 form of a spec, calibrated on images from a data
source (:func:`resnet_gen.data.open_dataset`), saved as a TorchScript file that needs only torch.

The network is the file ``resnet-gen build --target int8`` writes, imported from a private folder,
so what is saved is exactly what that file computes. Importing this imports torch.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .data import open_dataset
from .data.info import DataError
from .emit.source import emit_source
from .files import staging
from .plan import lower
from .spec import Spec

CALIBRATION_BATCH = 32


def calibration_batches(spec: Spec, source: str, images: int) -> list[torch.Tensor]:
    """The first ``images`` training images of ``source`` at the spec's input size, in batches."""
    size = spec.input.size if isinstance(spec.input.size, int) else tuple(spec.input.size)
    data = open_dataset(source, "train", size=size, channels=spec.input.channels)
    if data.info.channels != spec.input.channels:
        raise DataError(
            f"--calibration {source}: images have {data.info.channels} channel(s), the network takes"
            f" {spec.input.channels}; use --set input.channels={data.info.channels} or other data"
        )
    chosen = [data[index][0] for index in range(min(images, len(data)))]
    if not chosen:
        raise DataError(f"--calibration {source}: no images in its training split")
    return [
        torch.stack(chosen[start : start + CALIBRATION_BATCH]) for start in range(0, len(chosen), CALIBRATION_BATCH)
    ]


def quantised_model(spec: Spec, checkpoint: Mapping[str, torch.Tensor], batches: list[torch.Tensor]) -> nn.Module:
    """The int8 form of ``spec`` with ``checkpoint`` (training-form keys) folded and calibrated."""
    folder = Path(tempfile.mkdtemp(prefix="resnet_gen_int8_"))
    name = f"_resnet_gen_int8_{spec.name}"
    path = folder / f"{name}.py"
    path.write_text(emit_source(lower(spec), target="int8"), encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # TorchScript resolves the classes through their module
    module_spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization warns about its own deprecation
        model: nn.Module = getattr(module, spec.name)(calibration=batches, checkpoint=checkpoint)
    return model


def save_int8(model: nn.Module, path: Path) -> Path:
    """``model`` scripted and saved with ``torch.jit.save`` to ``path``, atomically."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    with staging(path) as staged:
        torch.jit.save(scripted, str(staged))
    return path
