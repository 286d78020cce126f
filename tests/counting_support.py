"""Shape-only CPU kernels for the counting tests: the tools (fvcore, ptflops) read only shapes,
so convolutions and batch norms may return zeros in their output shapes instead of computing."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

_set_tracing_state: Callable[[Any], None] = torch._C._set_tracing_state  # type: ignore[attr-defined]  # not in torch's stubs


def _untraced(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """The kernel with torch.jit's tracer off: it records the op around the kernel, not inside."""

    def run(*args: Any) -> Any:
        tracing = torch._C._get_tracing_state()
        _set_tracing_state(None)
        try:
            return kernel(*args)
        finally:
            _set_tracing_state(tracing)

    return run


# CPU kernels for the ops under what the tools see, returning zeros in the op's output shapes:
# the tools read only shapes, and with every weight, bias and statistic zero the output is also
# the real kernel's, without its arithmetic. Every nn.Conv*/F.conv* reaches aten::_convolution
# (the node fvcore's trace records; its shape from torch's own meta kernel); every batch norm
# (the eval-mode layers and the training-mode one that standardises a StdConv's weights) reaches
# native_batch_norm under aten::batch_norm: its input's shape, and per-channel statistics the
# forward does not read.
@_untraced
def _convolution(*args: Any) -> torch.Tensor:
    meta = torch.ops.aten._convolution.default(
        *(arg.to("meta") if isinstance(arg, torch.Tensor) else arg for arg in args)
    )
    return torch.zeros(meta.shape, dtype=meta.dtype)


@_untraced
def _native_batch_norm(x: torch.Tensor, *args: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    channels = x.shape[1]
    return torch.zeros(x.shape, dtype=x.dtype), torch.zeros(channels), torch.zeros(channels)


SHAPE_ONLY = {"_convolution": _convolution, "native_batch_norm": _native_batch_norm}


@contextlib.contextmanager
def shape_only_kernels() -> Iterator[None]:
    """The SHAPE_ONLY kernels until the block ends, then torch's own again: most of a full-size
    spec's time was their arithmetic."""
    library = torch.library.Library("aten", "IMPL")  # type: ignore[no-untyped-call]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
            for op, kernel in SHAPE_ONLY.items():
                library.impl(op, kernel, "CPU")  # type: ignore[no-untyped-call]
        yield
    finally:
        library._destroy()  # type: ignore[no-untyped-call]
