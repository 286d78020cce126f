"""The helper classes of :mod:`resnet_gen.runtime` as source text, copied into emitted files.

The runtime's modules are read and parsed here, never imported, so emitting needs no torch; an
emitted file holds each class it uses exactly as the runtime writes it, so the live and the
emitted networks run the same code.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache

from ..runtime import RUNTIME_DIR, helper_modules
from .values import EmitError

# What a helper class may use besides builtins, ``torch`` and ``nn`` (which every emitted file
# imports): each is an import the emitted file then has (keys of templates.IMPORTS).
OPTIONAL_IMPORTS = frozenset({"F", "math", "copy", "Any", "NamedTuple", "Sequence", "torchdiffeq"})


@dataclass(frozen=True)
class HelperSource:
    name: str
    text: str  # the class as the runtime writes it, decorators to the last line
    imports: frozenset[str]  # the OPTIONAL_IMPORTS it uses


def _file_of(module: str) -> str:
    """The file of a runtime module, relative to the runtime's folder (``unet.blocks``: ``unet/blocks.py``)."""
    return f"{module.replace('.', '/')}.py"


@cache
def _parsed(module: str) -> tuple[list[str], ast.Module]:
    text = (RUNTIME_DIR / _file_of(module)).read_text(encoding="utf-8")
    return text.splitlines(keepends=True), ast.parse(text)


def _module_level_names(tree: ast.Module) -> set[str]:
    """What the module itself defines (imports aside): a class may not lean on any of it."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


@cache
def helper_source(name: str) -> HelperSource:
    """The source of the runtime class ``name``."""
    module = helper_modules().get(name)
    if module is None:
        raise EmitError(f"no helper class {name!r} in resnet_gen.runtime; known: {', '.join(helper_modules())}")
    lines, tree = _parsed(module)
    where = f"resnet_gen/runtime/{_file_of(module)}"
    found = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    if not found or found[0].end_lineno is None:
        raise EmitError(f"{where} does not define the class {name}")
    node = found[0]
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    leaning = sorted(used & (_module_level_names(tree) - {name}))
    if leaning:
        raise EmitError(
            f"{where}: {name} uses {', '.join(leaning)} of its module;"
            " a helper class must stand alone to be copied into emitted files"
        )
    return HelperSource(name, "".join(lines[first - 1 : node.end_lineno]), frozenset(used & OPTIONAL_IMPORTS))
