"""What a spec's ``name`` may be. It names the generated factory function and the file
``<name>.py``, so it must be a plain identifier that shadows nothing: not a keyword, a builtin,
a name the generated file defines, or a module that ``import`` could find instead of the real one
(a ``typing.py`` on ``sys.path`` breaks ``import torch``)."""

from __future__ import annotations

import builtins
import keyword
import re
import sys

# Module-level names every generated file may define or import (see emit/source.py).
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
        "checkpoint",
        "FROZEN_MODULES",
        "fold_batch_norms",
        "fuse_for_cpu",
        "_fused_conv",
        "_CONV_POINTWISE",
        "quantize_int8",
        "Sequence",  # the U-Nets' files (unet/emit.py)
    }
)
# Classes a generated file may define: fixed ones, and block classes named after their kind
# (SEBottleneck, PreActBasicBlock, PlainBasicBlock2, ...; see emit/blocks.py).
GENERATED_CLASSES = frozenset(
    {
        "ResNet",
        "SqueezeExcite",
        "EfficientChannelAttention",
        "StdConv2d",
        "BlurPool2d",
        "ZeroPadShortcut",
        "EvoNormS0",
        "FilterResponseNormTLU",
        "SplitAttention",
        "FeatureInfo",
        # The U-Nets' helper classes (unet/emit.py HELPERS); DiffusionResBlock is a block class.
        "UNet",
        "SinusoidalTimesteps",
        "TimestepMLP",
        "SelfAttention",
        "Downsample",
        "Upsample",
        "DownStage",
        "MidStage",
        "UpStage",
    }
)
_BLOCK_CLASS = re.compile(r"(?:[A-Z][A-Za-z]*)?(?:Block|Bottleneck)\d*")
# Packages the generated file imports, besides the standard library.
IMPORTED_PACKAGES = frozenset({"torch", "torchvision", "timm", "numpy", "onnx", "onnxruntime"})


MAX_LENGTH = 80


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a network, or None."""
    if len(name) > MAX_LENGTH:
        return f"{name[:20]!r}... is {len(name):,} characters long; a name has at most {MAX_LENGTH}"
    if not (name.isascii() and name.isidentifier()):
        return f"{name!r} is not a valid name; use letters, digits and underscores, not starting with a digit (it names the generated Python function)"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a Python keyword; choose another name (it names the generated Python function)"
    if name.startswith("__") and name.endswith("__"):
        return f"{name!r} has Python's own double underscores; choose a name without them"
    if name in vars(builtins):
        return f"{name!r} is a Python builtin, which the generated function would shadow; choose another name"
    if name in sys.stdlib_module_names or name in IMPORTED_PACKAGES:
        return f"{name!r} is the name of a Python module: the generated {name}.py would be imported in its place; choose another name"
    if name in GENERATED_FILE_NAMES or name in GENERATED_CLASSES or _BLOCK_CLASS.fullmatch(name):
        return f"{name!r} is a name the generated file itself uses; choose another name"
    return None
