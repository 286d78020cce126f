"""What may name something in an emitted file: plain Python identifiers, and the names every
emitted file itself defines or imports. The spec's name rules and the emitter's checks share these."""

from __future__ import annotations

import builtins
import keyword
from functools import cache
from typing import Literal

from .runtime import helper_modules

# Module-level names every emitted file may define or import (see emit/source.py).
GENERATED_FILE_NAMES = frozenset(
    {
        "torch",
        "nn",
        "F",
        "math",
        "copy",
        "operator",
        "OrderedDict",
        "Iterable",
        "Mapping",
        "Any",
        "NamedTuple",  # the multitask output (runtime/decoders.py)
        "checkpoint",
        "FROZEN_MODULES",
        "fold_batch_norms",
        "freeze_for_cpu",
        "freeze_int8",
        "fuse_for_cpu",
        "_fused_conv",
        "_CONV_POINTWISE",
        "_TINY_CONV_MACS",
        "_WithThreads",
        "_conv_macs",
        "quantize_int8",
        "Sequence",  # the U-Nets' files (unet/emit.py)
        "torchdiffeq",  # the files of specs with a solved ode block (runtime/ode_solver.py)
    }
)
# Classes an emitted file may define besides its block classes and the runtime's helpers (the
# U-Nets' classes are runtime helpers too: runtime/diffusion*.py): the model.
_MODEL_CLASSES = frozenset({"ResNet"})


@cache
def generated_classes() -> frozenset[str]:
    """Classes an emitted file may define besides its block classes: the model and the helpers."""
    return _MODEL_CLASSES | frozenset(helper_modules())


def identifier_kind(name: str) -> Literal["identifier", "invalid", "keyword", "builtin"]:
    """Whether ``name`` is a Python name that shadows nothing: ``identifier``; else why not
    (not an ASCII identifier, a keyword or soft keyword, a builtin). Callers word the message."""
    if not (name.isascii() and name.isidentifier()):
        return "invalid"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "keyword"
    if name in vars(builtins):
        return "builtin"
    return "identifier"
