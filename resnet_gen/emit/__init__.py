"""Source back end: a spec becomes one standalone PyTorch file, written from jinja2 templates.

``emit(spec)`` returns the source (no torch import); ``resnet-gen build`` writes
``generated/<name>.py``. The file needs only torch and has exactly the live back end's modules,
state_dict keys and outputs.

Where things are (templates in the top-level ``templates/`` folder):

* ``file.py.j2`` puts together ``header.py.j2`` (do-not-edit marker, spec, hash, version,
  module docstring, imports), the helper modules, ``block.py.j2`` once per block class,
  ``model.py.j2`` (with ``stem.py.j2`` and ``head.py.j2``) and ``factory.py.j2``.
* ``layers/<Kind>.py.j2``: one snippet per plan layer kind (``Kind`` is the dataclass's name in
  ``resnet_gen/plan/layers.py``). It sets ``roles`` and defines ``build(layer)``, the
  constructor; the block and model templates call every layer as ``x = self.<name>(x)``.
* helper ``nn.Module`` classes (SE, ECA, blur pool, ...) are not templates: a snippet that calls
  ``use("<Class>")`` gets the class of :mod:`resnet_gen.runtime` copied into the file as the
  runtime writes it (read as text by ``emit/helpers.py``), the same class the live back end runs.

Adding a plan layer kind ``Foo`` (a new dataclass in ``plan/layers.py``) takes one file,
``templates/layers/Foo.py.j2``, the constructor and the role of each field::

    {#- Foo: what it is. -#}
    {% set roles = {"channels": "channels", "stride": "stride", "kernel": "fixed"} %}
    {% macro build(layer) -%}
    {{ use("Foo2d") }}({{ layer.channels }}, kernel_size={{ layer.kernel }}{{ kw("stride", layer.stride, 1) }})
    {%- endmacro %}

plus the class ``Foo2d`` in a module of ``resnet_gen/runtime/`` (found there by
``runtime.helper_modules``, no table to edit) if torch has no module for it: its ``forward`` takes and returns one
tensor, as every layer is called ``x = self.<name>(x)``, and it stands alone (torch, ``nn``,
``F``, ``math``, ``copy``, ``Any`` and builtins only), since the emitted file copies it alone. ``roles`` names every
dataclass field except ``path`` and ``out_size`` (``templates.ROLES``): ``channels`` (what the
layer reads) and ``out_channels`` (what it writes) become the block's ``in/mid/out_channels``
where they match; ``stride``, ``dilation``, ``groups`` the block's stride, dilations and groups
where they vary; a ``value`` gets its own argument where it varies; blocks that differ in a
``fixed`` field get separately written variants chosen by a condition; ``ignored`` fields are not
given to the snippet. Template globals: ``kw(name, value, default)`` writes ``, name=value``
unless it is the default; ``use(Class)`` pulls in a helper class; ``need("F" |
"math" | "OrderedDict")`` adds an import; ``activation(kind)`` writes an activation;
``unsupported(message)`` stops the build. A layer kind without a snippet, or a field its snippet
does not name, is an :class:`EmitError`, never silently wrong code; the equivalence tests
(``tests/test_emit_equivalence.py``) then hold the new kind to the live back end.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

from ..spec.digest import spec_hash
from .source import MARKER, emit_source
from .values import EmitError

if TYPE_CHECKING:
    from ..plan import Plan
    from ..spec import Spec


def emit(spec: Spec | Plan, source: str | Path | None = None, *, target: str = "training") -> str:
    """The standalone PyTorch source of ``spec`` (compiled to its plan first) or of a plan,
    formatted; ``source`` names its file in the header.

    ``target="inference"`` writes the deployment form (batch norms folded, channels-last)."""
    from ..compile import plan_of

    return emit_source(plan_of(spec), source, target=target)


class _CallableModule(types.ModuleType):
    """``resnet_gen.emit`` is both this package and the ``rg.emit(...)`` function: importing the
    package rebinds ``resnet_gen.emit`` to the module, so calling the module calls :func:`emit`."""

    def __call__(self, spec: Spec | Plan, source: str | Path | None = None, *, target: str = "training") -> str:
        return emit(spec, source, target=target)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["MARKER", "EmitError", "emit", "spec_hash"]
