"""The jinja2 environment, the layer snippets, and what a render pulls in (helper classes, imports).

Every plan layer kind has one snippet, ``templates/layers/<Kind>.py.j2`` (``Kind`` is the plan
dataclass's name). A snippet sets ``roles`` (each dataclass field and how it may vary between
blocks, see :data:`ROLES`) and defines the macro ``build(layer)`` that writes the constructor.
A snippet that needs its own ``nn.Module`` calls ``use("ClassName")`` to copy the class of that
name from :mod:`resnet_gen.runtime` into the file; ``need("F")`` and ``need("math")`` pull in imports.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace
from typing import Any

import jinja2

from .. import catalog, user_cache
from ..choices import ACTIVATION_CLASSES, IN_PLACE_ACTIVATIONS
from ..plan.layers import Layer
from ..runtime import helper_modules
from .values import EmitError, Expr, literal, py_literal

# How a layer field may differ between blocks that share one class:
#   channels: the channels a layer reads (named as the layer before named what it wrote);
#   out_channels: the channels it writes (named after the block's out/mid/in channels where they match);
#   stride, dilation, groups: named after the block's stride / dilations / groups where they vary;
#   value: a literal where constant, else its own constructor argument;
#   fixed: part of the code's shape (kernel, type, eps): blocks that differ get separate code;
#   ignored: not a constructor input.
ROLES = ("channels", "out_channels", "stride", "dilation", "groups", "value", "fixed", "ignored")
# Fields that never reach a constructor: the module path is where it goes, the size is analysis.
ALWAYS_IGNORED = ("path", "out_size")

IMPORTS = {
    "math": "import math",
    "OrderedDict": "from collections import OrderedDict",
    "Mapping": "from collections.abc import Mapping",
    "Iterable": "from collections.abc import Iterable",
    "Sequence": "from collections.abc import Sequence",
    "copy": "import copy",
    "operator": "import operator",
    "Any": "from typing import Any",
    "NamedTuple": "from typing import NamedTuple",
    "F": "import torch.nn.functional as F",
    "checkpoint": "from torch.utils.checkpoint import checkpoint",
    # The Neural-ODE block's solvers: the optional extra resnet-gen[ode], only where a file uses it.
    "torchdiffeq": "import torchdiffeq",
}


@dataclass
class Needs:
    """What the code rendered so far uses: helper classes (of resnet_gen.runtime) and imports."""

    helpers: set[str] = field(default_factory=set)
    imports: set[str] = field(default_factory=set)


_NEEDS: contextvars.ContextVar[Needs] = contextvars.ContextVar("resnet_gen_emit_needs")


@contextmanager
def collecting() -> Iterator[Needs]:
    """Record the helper classes and imports used by everything rendered inside the block."""
    needs = Needs()
    token = _NEEDS.set(needs)
    try:
        yield needs
    finally:
        _NEEDS.reset(token)


def use(name: str) -> str:
    """Template global: pull in the helper class ``name`` of resnet_gen.runtime; returns the name to write."""
    if name not in helper_modules():
        raise EmitError(f"no helper class {name!r} in resnet_gen.runtime; known: {', '.join(helper_modules())}")
    _NEEDS.get().helpers.add(name)
    return name


def need(name: str) -> str:
    """Template global: the emitted file imports ``name`` (a key of IMPORTS)."""
    if name not in IMPORTS:
        raise EmitError(f"unknown import {name!r}; known: {sorted(IMPORTS)}")
    _NEEDS.get().imports.add(name)
    return ""


def _kw(name: str, value: object, default: object) -> str:
    """``, name=value`` unless ``value`` is the literal ``default``."""
    expr = value if isinstance(value, Expr) else literal(value)
    if expr == default:
        return ""
    return f", {name}={expr}"


def _unsupported(message: str) -> str:
    raise EmitError(message)


def activation_code(kind: str) -> str:
    """The constructor of activation ``kind``, as the Act snippet writes it."""
    return render_layer_kind("Act", {"type": literal(kind), "inplace": literal(True)})


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """jinja2's compiled templates kept between runs. jinja2 keys each by the template's name and
    checks it against the source's checksum and its own version, so an edited template is
    compiled again. Best-effort: a folder that cannot be written leaves the run as it was."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with suppress(OSError):
            super().dump_bytecode(bucket)


def _compiled_templates() -> jinja2.BytecodeCache | None:
    folder = user_cache.template_folder()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return _CompiledTemplates(str(folder))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(catalog.templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_compiled_templates(),
    )
    env.globals.update(
        kw=_kw,
        use=use,
        need=need,
        unsupported=_unsupported,
        activation=activation_code,
        literal=py_literal,
        activation_classes=ACTIVATION_CLASSES,
        in_place_activations=IN_PLACE_ACTIVATIONS,
    )
    env.filters["py"] = py_literal
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@dataclass(frozen=True)
class Snippet:
    kind: str
    roles: dict[str, str]
    build: Any  # the template's jinja macro


@cache
def snippet(kind: str) -> Snippet:
    name = f"layers/{kind}.py.j2"
    try:
        module = environment().get_template(name).module
    except jinja2.TemplateNotFound:
        raise EmitError(
            f"plan layer kind {kind} has no source template; add templates/{name} (see resnet_gen.emit)"
        ) from None
    roles = getattr(module, "roles", None)
    build = getattr(module, "build", None)
    if not isinstance(roles, dict) or build is None:
        raise EmitError(f"templates/{name} must set 'roles' and define the macro 'build(layer)'")
    unknown = sorted(role for role in roles.values() if role not in ROLES)
    if unknown:
        raise EmitError(f"templates/{name}: unknown roles {unknown}; use {', '.join(ROLES)}")
    return Snippet(kind, dict(roles), build)


def roles_of(layer: Layer) -> dict[str, str]:
    """Each constructor field of ``layer`` and its role. A field the snippet does not name is an
    error, so a field added to a plan layer can never be dropped silently."""
    kind = type(layer).__name__
    roles = snippet(kind).roles
    names = [f.name for f in dataclasses.fields(layer) if f.name not in ALWAYS_IGNORED]
    missing = [name for name in names if name not in roles]
    if missing:
        raise EmitError(
            f"{layer.path}: templates/layers/{kind}.py.j2 does not say how to write field(s) {', '.join(missing)}"
        )
    return {name: roles[name] for name in names}


def render_layer_kind(kind: str, exprs: dict[str, Expr]) -> str:
    code = str(snippet(kind).build(SimpleNamespace(**exprs))).strip()
    if not code:
        raise EmitError(f"templates/layers/{kind}.py.j2 wrote nothing")
    return code


def render_layer(layer: Layer, exprs: dict[str, Expr]) -> str:
    """The constructor of ``layer`` with its fields written as ``exprs``."""
    return render_layer_kind(type(layer).__name__, exprs)
