"""Exporting a built network: ONNX (through ``torch.onnx``'s exporter) and ``torch.export`` programs.

The batch dimension is dynamic; the spatial size is the spec's input size unless given. Files
are written atomically: a failed export leaves nothing behind. Importing this imports torch.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from .files import staging
from .plan import Plan

FORMATS = ("onnx", "pt2")
# Protocol buffers cap a file at 2 GiB; larger networks keep their weights in a side file.
_INLINE_LIMIT = 1_800_000_000


def example_input(model: nn.Module, batch: int = 1, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A zero input of the network's channels and (unless ``size`` is given) its spec's input size.

    Needs a live network (it reads its plan); for emitted source pass your own example instead.
    """
    plan = getattr(model, "plan", None)
    if not isinstance(plan, Plan):
        raise TypeError("this network has no plan to read its input shape from; pass example=torch.zeros(...)")
    height, width = size if size is not None else plan.input_size
    parameter = next(model.parameters())
    return torch.zeros(batch, plan.input_channels, height, width, dtype=parameter.dtype, device=parameter.device)


def output_names(model: nn.Module) -> list[str]:
    """``feature<i>`` per returned feature map, else ``logits`` (with a classifier) or ``features``;
    ``mask`` after them for a segmentation decoder.

    Read from the module itself (``features_only``, ``feature_info``, ``fc``), so live and emitted
    networks agree; a classifier lists its feature maps in ``feature_info`` too, but returns logits.
    """
    info = getattr(model, "feature_info", None)
    if getattr(model, "features_only", False) and info is not None:
        return [f"feature{entry['index']}" for entry in info]
    classifier = isinstance(getattr(model, "fc", None), nn.Linear)
    if isinstance(getattr(model, "decoder", None), nn.Module):  # a segmentation or multitask head
        return ["logits", "mask"] if classifier else ["mask"]
    return ["logits" if classifier else "features"]


def _batch_dim() -> tuple[dict[int, object]]:
    return ({0: torch.export.Dim("batch", min=1, max=4096)},)


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """The exporter reports progress on stdout and warns about its own internals."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_program(model: nn.Module, example: torch.Tensor | None = None) -> torch.export.ExportedProgram:
    """``torch.export.export`` of ``model`` in eval mode, with a dynamic batch dimension."""
    model.eval()
    # A batch of 1 would be specialised to a constant; trace with 2 and mark it dynamic.
    example = example if example is not None else example_input(model, batch=2)
    with quiet_exporter():
        return torch.export.export(model, (example,), dynamic_shapes=_batch_dim(), strict=False)


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor | None = None, *, opset: int | None = None) -> Path:
    """Write ``model`` (eval mode) as ONNX to ``path``, atomically, with a dynamic batch dimension.

    Input ``input``; outputs as :func:`output_names`. Networks past 2 GiB of weights keep them in
    ``<path>.data`` beside the file (moved into place together).
    """
    if importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnx") is None:
        raise ImportError("ONNX export needs the onnx and onnxscript packages: pip install 'resnet-gen[export]'")
    model.eval()
    # A batch of 1 would be specialised to a constant; trace with 2 and mark it dynamic.
    example = example if example is not None else example_input(model, batch=2)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    external = size > _INLINE_LIMIT
    with staging(path) as staged, quiet_exporter():
        torch.onnx.export(
            model,
            (example,),
            str(staged),
            dynamo=True,
            external_data=external,
            opset_version=opset,
            input_names=["input"],
            output_names=output_names(model),
            dynamic_shapes=_batch_dim(),
            verbose=False,
        )
    return path


def save_program(program: torch.export.ExportedProgram, path: Path) -> Path:
    """``torch.export.save`` to ``path``, atomically."""
    with staging(path) as staged:
        torch.export.save(program, str(staged))
    return path
