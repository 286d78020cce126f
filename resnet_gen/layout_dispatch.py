"""Where a command that serves both layouts picks one: a classifier spec or a diffusion U-Net spec
(``layout: unet``), loaded and reported alike. Each spec is resolved once, and the resolved
mapping goes on to its layout's loader. The U-Net modules are imported only for a U-Net spec, so a
command on classifiers pays nothing for them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis import Report, analyze
from .compile import compile_resolved
from .spec import Spec
from .spec.load import ParentCache, is_unet_mapping, resolve
from .spec.yaml_source import LocatedMapping

if TYPE_CHECKING:
    from .unet.spec import UNetSpec


def load_with_report(
    source: str | Path,
    overrides: Mapping[str, Any] | list[str] | None = None,
    *,
    parents: ParentCache | None = None,
) -> tuple[Spec | UNetSpec, Report]:
    """The spec of either layout and its report (params, MACs, rows per stage)."""
    return report_of_resolved(resolve(source, parents=parents), overrides)


def report_of_resolved(
    mapping: LocatedMapping, overrides: Mapping[str, Any] | list[str] | None = None
) -> tuple[Spec | UNetSpec, Report]:
    """:func:`load_with_report` of a spec already resolved (``resnet_gen.spec.load.resolve``)."""
    if is_unet_mapping(mapping):
        from .unet.load import unet_and_plan_of
        from .unet.report import unet_report

        unet, plan = unet_and_plan_of(mapping, overrides)
        return unet, unet_report(plan)
    spec, classifier = compile_resolved(mapping, overrides)
    return spec, analyze(classifier)


def totals_of_resolved(
    mapping: LocatedMapping, overrides: Mapping[str, Any] | list[str] | None = None
) -> tuple[Spec | UNetSpec, int, int]:
    """The spec of either layout and its network's parameter and MAC totals: what validate
    prints, without the per-stage rows a report adds."""
    if is_unet_mapping(mapping):
        from .unet.load import unet_and_plan_of

        unet, unet_plan = unet_and_plan_of(mapping, overrides)
        return unet, unet_plan.params, unet_plan.macs
    spec, plan = compile_resolved(mapping, overrides, digest=False)
    return spec, plan.params, plan.macs


def spec_name(source: str | Path) -> str:
    """The name of the spec ``source`` names, of either layout (SpecError if it cannot load)."""
    mapping = resolve(source)
    if is_unet_mapping(mapping):
        from .unet.load import unet_and_plan_of

        return unet_and_plan_of(mapping)[0].name
    return compile_resolved(mapping)[0].name
