"""Reading a local checkpoint into a flat ``{key: tensor}`` mapping. Never downloads; never unpickles code."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .report import WeightsError

# Where training scripts commonly nest the weights inside a checkpoint.
_CONTAINERS = ("state_dict", "model", "model_state_dict", "module", "net", "network")
# Prefixes wrappers add to every key: DataParallel/DDP, torch.compile.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth``/``.pt`` (read with ``weights_only=True``) or ``.safetensors`` file."""
    if not path.is_file():
        raise WeightsError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.suffix == ".safetensors":
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsError(
                f"{path}: reading .safetensors files needs the safetensors package: pip install 'resnet-gen[safetensors]'"
            ) from None
        try:
            return dict(load_file(str(path), device="cpu"))
        except (SafetensorError, OSError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if path.suffix not in _TORCH_SUFFIXES:
        raise WeightsError(f"{path}: unknown checkpoint type; expected one of .pth, .pt, .bin, .ckpt or .safetensors")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"{path}: holds pickled objects that weights_only=True refuses to load (a whole model?); "
            "save model.state_dict() instead"
        ) from None
    except Exception as exc:  # arbitrary bytes fail in many ways inside the unpickler
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    return tensors_of(data, str(path))


def tensors_of(data: Any, source: str) -> dict[str, torch.Tensor]:
    """The state_dict inside ``data``: unwrap common containers and wrapper prefixes."""
    if not isinstance(data, Mapping):
        raise WeightsError(f"{source}: holds a {type(data).__name__}, not a state_dict")
    for key in _CONTAINERS:
        inner = data.get(key)
        if isinstance(inner, Mapping) and any(isinstance(value, torch.Tensor) for value in inner.values()):
            data = inner
            break
    tensors = {str(key): value for key, value in data.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{source}: holds no tensors")
    for prefix in _WRAPPER_PREFIXES:
        if all(key.startswith(prefix) for key in tensors):
            tensors = {key[len(prefix) :]: value for key, value in tensors.items()}
    return tensors
