"""Spec text to what the back ends read, in one place: a spec file (or catalog name, or resolved
mapping) is validated to a :class:`Spec` and lowered to its :class:`Plan`.

Validation (``spec/load.py``) and lowering (``plan/lower.py``) are separate jobs; this module
runs them in turn and reports what the planner refuses (an input too small for the network, too
many parameters) as located lines, placed by the same rules as validation's problems. The CLI,
``rg.load_spec``, ``rg.build``, ``rg.emit`` and ``rg.diagram`` all come through here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import Location, SpecError
from .plan import Plan, lower
from .spec.limits import params_problem
from .spec.load import ParentCache, Problems, check, plan_problem, resolve, validated_by, with_overrides
from .spec.model import Spec
from .spec.yaml_source import LocatedMapping


def compile_spec(
    source: str | Path,
    overrides: Mapping[str, Any] | list[str] | None = None,
    *,
    parents: ParentCache | None = None,
) -> tuple[Spec, Plan]:
    """The Spec and Plan of a spec file or catalog name, with ``extends`` and ``overrides``
    (see :func:`resnet_gen.spec.load.read_spec`). Raises :class:`SpecError`, located, on any problem."""
    return compile_resolved(resolve(source, parents=parents), overrides)


def compile_resolved(
    mapping: LocatedMapping, overrides: Mapping[str, Any] | list[str] | None = None, *, digest: bool = True
) -> tuple[Spec, Plan]:
    """:func:`compile_spec` of a spec already resolved (``extends`` applied, no overrides yet), as
    a command that first looks at the spec's ``layout`` hands it on without reading it again.
    ``digest=False``: a plan without the spec's sha256, for a check that only counts."""
    mapping, unchanged, where = with_overrides(mapping, overrides)
    return compile_mapping(mapping, unchanged=unchanged, overrides_at=where, digest=digest)


def load_spec(source: str | Path, overrides: Mapping[str, Any] | list[str] | None = None) -> Spec:
    """Load a spec from a file path or a catalog name, apply ``extends`` and overrides, validate,
    and make sure it lowers (the shapes hold at its input size).

    ``overrides`` is a mapping of dotted paths to values (``{"stages[3].blocks": 4}``) or a list of
    ``"path=value"`` strings as given to ``--set``. Raises :class:`SpecError` on any problem.
    """
    return compile_spec(source, overrides)[0]


def compile_mapping(
    mapping: LocatedMapping,
    *,
    unchanged: LocatedMapping | None = None,
    overrides_at: Location | None = None,
    digest: bool = True,
) -> tuple[Spec, Plan]:
    """The Spec and Plan of a resolved mapping. ``unchanged`` (the mapping before overrides given
    at ``overrides_at``) decides where problems are placed, as for :func:`resnet_gen.spec.validate`."""
    compiled = functools.partial(_compiled, digest=digest)
    return validated_by(compiled, mapping, unchanged=unchanged, overrides_at=overrides_at)


def plan_of(spec: Spec | Plan, **backbone: Any) -> Plan:
    """The plan a back end reads: ``spec`` lowered (a plan as it is). Keyword arguments override
    the spec's ``backbone`` section (``features_only``, ``out_indices``, ``output_stride``,
    ``frozen_stages``) and are validated like it."""
    if isinstance(spec, Plan):
        if backbone:
            raise TypeError("backbone options need a Spec; a Plan is already lowered")
        return spec
    if backbone:
        from .spec.backbone import with_backbone

        spec = with_backbone(spec, **backbone)
    return lower(spec)


def _compiled(mapping: LocatedMapping, *, digest: bool = True) -> tuple[Spec, Plan]:
    spec = check(mapping)
    try:
        plan = lower(spec, digest=digest)
        too_big = params_problem(plan, spec.width_factor)
        if too_big is not None:
            raise SpecError(too_big)
    except SpecError as exc:
        raise Problems([plan_problem(problem) for problem in exc.problems]) from None
    return spec, plan
