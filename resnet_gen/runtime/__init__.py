"""The helper ``nn.Module`` classes both back ends use, written once.

The live back end imports them; the source back end copies each class it needs, as it is written
here, into the emitted file (``resnet_gen.emit.helpers`` reads these files as text, so emitting
never imports torch). A class here therefore stands alone: it may use ``torch``, ``nn``, ``F``,
``math``, ``copy``, ``Any``, ``NamedTuple``, ``Sequence`` and ``torchdiffeq`` (the imports an
emitted file can have) and builtins, nothing else of its module, and its ``forward`` must work
under ``torch.jit.script`` as the emitted files do (the diffusion U-Net's modules excepted, which
``torch.export`` and ONNX take, and the torchdiffeq-solved ODE block).

Every top-level class of a module here is a helper: :func:`helper_modules` finds them by reading
the files' syntax, so adding a class is adding it to a module (or a new module), with no table to
keep. This package's ``__init__`` imports no torch, so that finding them is cheap.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent


@cache
def helper_modules() -> dict[str, str]:
    """Each helper class and the module of this package that defines it (``"attention"``, or
    ``"unet.blocks"`` in a subpackage), sorted by class name. Read from the files' syntax trees,
    never imported; a class name defined by two modules is an error, since an emitted file, which
    holds its helpers side by side, could not tell them apart."""
    found: dict[str, str] = {}
    for path in sorted(RUNTIME_DIR.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        module = ".".join(path.relative_to(RUNTIME_DIR).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                if node.name in found:
                    raise ValueError(
                        f"resnet_gen/runtime: {node.name} is defined in both {found[node.name]} and {module};"
                        " helper class names must be unique"
                    )
                found[node.name] = module
    return dict(sorted(found.items()))
