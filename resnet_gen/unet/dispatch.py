"""Where a command that serves both layouts picks one: a classifier spec or a U-Net spec
(``layout: unet``), loaded and reported alike."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..analysis import Report, analyze
from ..compile import compile_spec
from ..spec import Spec
from ..spec.load import ParentCache
from .load import is_unet, load_unet_and_plan
from .spec import UNetSpec


def load_with_report(
    source: str | Path,
    overrides: Mapping[str, Any] | list[str] | None = None,
    *,
    parents: ParentCache | None = None,
) -> tuple[Spec | UNetSpec, Report]:
    """The spec of either layout and its report (params, MACs, rows per stage)."""
    if is_unet(source, parents=parents):
        from .report import unet_report

        unet, plan = load_unet_and_plan(source, overrides, parents=parents)
        return unet, unet_report(plan)
    spec, classifier = compile_spec(source, overrides, parents=parents)
    return spec, analyze(classifier)


def spec_name(source: str | Path) -> str:
    """The name of the spec ``source`` names, of either layout (SpecError if it cannot load)."""
    if is_unet(source):
        return load_unet_and_plan(source)[0].name
    return compile_spec(source)[0].name
