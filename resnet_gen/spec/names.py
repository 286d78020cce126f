"""What a spec's ``name`` may be. It names the generated factory function and the file
``<name>.py``, so it must be a plain identifier that shadows nothing: not a keyword, a builtin,
a name the generated file defines, or a module that ``import`` could find instead of the real one
(a ``typing.py`` on ``sys.path`` breaks ``import torch``)."""

from __future__ import annotations

import re
import sys

from ..identifiers import GENERATED_FILE_NAMES, generated_classes, identifier_kind

# Block classes are named after their kind (SEBottleneck, PreActBasicBlock, PlainBasicBlock2, ...;
# see emit/blocks.py); the other names an emitted file uses are in resnet_gen.identifiers.
_BLOCK_CLASS = re.compile(r"(?:[A-Z][A-Za-z]*)?(?:Block|Bottleneck)\d*")
# Packages the generated file imports, besides the standard library.
IMPORTED_PACKAGES = frozenset({"torch", "torchvision", "timm", "numpy", "onnx", "onnxruntime"})


MAX_LENGTH = 80


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a network, or None."""
    if len(name) > MAX_LENGTH:
        return f"{name[:20]!r}... is {len(name):,} characters long; a name has at most {MAX_LENGTH}"
    kind = identifier_kind(name)
    if kind == "invalid":
        return f"{name!r} is not a valid name; use letters, digits and underscores, not starting with a digit (it names the generated Python function)"
    if kind == "keyword":
        return f"{name!r} is a Python keyword; choose another name (it names the generated Python function)"
    if name.startswith("__") and name.endswith("__"):
        return f"{name!r} has Python's own double underscores; choose a name without them"
    if kind == "builtin":
        return f"{name!r} is a Python builtin, which the generated function would shadow; choose another name"
    if name in sys.stdlib_module_names or name in IMPORTED_PACKAGES:
        return f"{name!r} is the name of a Python module: the generated {name}.py would be imported in its place; choose another name"
    if name in GENERATED_FILE_NAMES or name in generated_classes() or _BLOCK_CLASS.fullmatch(name):
        return f"{name!r} is a name the generated file itself uses; choose another name"
    return None
