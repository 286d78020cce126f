"""Diagram back end: a Plan drawn with Graphviz, never by tracing a torch model.

``diagram(plan, view="macro")`` returns a ``graphviz.Digraph``; :func:`render` turns it into SVG,
PNG, PDF or DOT bytes. Importing this package is cheap: Graphviz is imported on first use.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from .choices import DIRECTIONS, FORMATS, INSTALL_HINT, VIEWS, GraphvizNotFound

if TYPE_CHECKING:
    import graphviz

    from ..plan import Plan
    from ..spec import Spec


def diagram(plan: Plan | Spec, view: str = "macro", *, direction: str = "TB") -> graphviz.Digraph:
    """The ``view`` (``macro`` or ``blocks``) of ``plan`` as a graph, laid out ``TB`` or ``LR``;
    a spec is compiled to its plan first (the drawing reads only the plan)."""
    from ..compile import plan_of

    plan = plan_of(plan)
    if view == "macro":
        from .macro import macro_view

        return macro_view(plan, direction)
    if view == "blocks":
        from .blocks import blocks_view

        return blocks_view(plan, direction)
    raise ValueError(f"view must be one of {', '.join(VIEWS)} (got {view!r})")


def render(graph: graphviz.Digraph, fmt: str = "svg") -> bytes:
    """``graph`` as svg, png, pdf or dot bytes; raises :class:`GraphvizNotFound` without ``dot``."""
    from .output import render as render_graph

    return render_graph(graph, fmt)


def draw(plan: Plan | Spec, view: str = "macro", fmt: str = "svg", *, direction: str = "TB") -> bytes:
    """:func:`diagram` and :func:`render` in one call."""
    return render(diagram(plan, view, direction=direction), fmt)


class _CallableModule(types.ModuleType):
    """``resnet_gen.diagram`` is both this package and the ``rg.diagram(...)`` function.

    Importing the package makes Python bind ``resnet_gen.diagram`` to the module, replacing the
    lazy function of that name in ``resnet_gen``; calling the module forwards to :func:`diagram`,
    so ``rg.diagram(spec)`` works either way.
    """

    def __call__(self, spec: Spec | Plan, view: str = "macro", *, direction: str = "TB") -> graphviz.Digraph:
        return diagram(spec, view, direction=direction)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["DIRECTIONS", "FORMATS", "INSTALL_HINT", "VIEWS", "GraphvizNotFound", "diagram", "draw", "render"]
