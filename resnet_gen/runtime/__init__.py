"""The helper ``nn.Module`` classes both back ends use, written once.

The live back end imports them; the source back end copies each class it needs, as it is written
here, into the emitted file (``resnet_gen.emit.helpers`` reads these files as text, so emitting
never imports torch). A class here therefore stands alone: it may use ``torch``, ``nn``, ``F``,
``math``, ``copy``, ``Any``, ``NamedTuple``, ``Sequence`` and ``torchdiffeq`` (the imports an
emitted file can have) and builtins, nothing else of its module, and its ``forward`` must work
under ``torch.jit.script`` as the emitted files do (the diffusion U-Net's modules excepted, which
``torch.export`` and ONNX take, and the torchdiffeq-solved ODE block).

Every top-level class of a module here is a helper: :func:`helper_modules` finds them by reading
the files (a line that starts with ``class``), so adding a class is adding it to a module (or a
new module), with no table to keep. This package's ``__init__`` imports no torch, so that finding
them is cheap.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent
# A top-level class statement: only one starts a line with "class" in these files (a class in a
# function or in a class is indented, and no docstring line here starts with the word; the
# tests hold the table to what importing the modules defines). A tenth of an ast.parse.
_TOP_LEVEL_CLASS = re.compile(r"^class ([A-Za-z_]\w*)\b", re.MULTILINE)


@cache
def helper_modules() -> dict[str, str]:
    """Each helper class and the module of this package that defines it (``"attention"``, or
    ``"unet.blocks"`` in a subpackage), sorted by class name. Read from the files' text, never
    imported; a class name defined by two modules is an error, since an emitted file, which
    holds its helpers side by side, could not tell them apart."""
    found: dict[str, str] = {}
    for path in sorted(RUNTIME_DIR.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        module = ".".join(path.relative_to(RUNTIME_DIR).with_suffix("").parts)
        for name in _TOP_LEVEL_CLASS.findall(path.read_text(encoding="utf-8")):
            if name in found:
                raise ValueError(
                    f"resnet_gen/runtime: {name} is defined in both {found[name]} and {module};"
                    " helper class names must be unique"
                )
            found[name] = module
    return dict(sorted(found.items()))
