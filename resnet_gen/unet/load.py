"""Front end of the U-Net layout: the classifier loader's ``extends``, ``--set`` and located
messages, validated against :class:`UNetSpec` and lowered to a :class:`UNetPlan`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import Location, SpecError, located
from ..spec import messages
from ..spec.load import (
    PYTHON_OVERRIDES,
    SET,
    ParentCache,
    apply_overrides,
    model_problems,
    parse_overrides,
    resolve,
    validated_by,
)
from ..spec.yaml_source import LocatedMapping
from .plan import UNetPlan, lower_unet
from .spec import UNetSpec


def load_unet(source: str | Path, overrides: Mapping[str, Any] | list[str] | None = None) -> UNetSpec:
    """Load a U-Net spec from a file or catalog name, with ``extends`` and overrides, validated."""
    return load_unet_and_plan(source, overrides)[0]


def load_unet_and_plan(
    source: str | Path,
    overrides: Mapping[str, Any] | list[str] | None = None,
    *,
    parents: ParentCache | None = None,
) -> tuple[UNetSpec, UNetPlan]:
    """:func:`load_unet` and the plan it lowers to; raises :class:`SpecError` with located lines."""
    with messages.root_model(UNetSpec):
        return unet_and_plan_of(resolve(source, parents=parents), overrides)


def unet_and_plan_of(
    mapping: LocatedMapping, overrides: Mapping[str, Any] | list[str] | None = None
) -> tuple[UNetSpec, UNetPlan]:
    """:func:`load_unet_and_plan` of a U-Net spec already resolved (``extends`` applied, no
    overrides yet); ``mapping`` takes the overrides in place."""
    with messages.root_model(UNetSpec):
        _refuse_classifier_parent(mapping)
        if not overrides:
            return validated_by(_validated, mapping)
        unchanged = mapping.copy()
        where = SET if isinstance(overrides, list) else PYTHON_OVERRIDES
        items = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
        apply_overrides(mapping, items, where=where)
        return validated_by(_validated, mapping, unchanged=unchanged, overrides_at=where)


def _refuse_classifier_parent(mapping: LocatedMapping) -> None:
    """A U-Net that extends a classifier inherits keys it cannot have: one line at ``extends``
    instead of one per inherited key at the parent's lines."""
    inherited = [
        key
        for key in mapping.data
        if key not in UNetSpec.model_fields and mapping.where((key,)).source != mapping.source
    ]
    if inherited:
        where = mapping.locations.get(("extends",), Location(mapping.source))
        raise SpecError(
            located(
                where,
                "extends",
                f"a U-Net (layout: unet) cannot extend a classifier, whose {', '.join(inherited)} it would"
                " inherit; extend a U-Net spec such as unet_tiny, or none",
            )
        )


def _validated(mapping: LocatedMapping) -> tuple[UNetSpec, UNetPlan]:
    try:
        spec = UNetSpec.model_validate(mapping.data)
    except ValidationError as exc:
        raise model_problems(exc) from None
    return spec, lower_unet(spec)  # every rule is the spec's: lowering a valid spec cannot fail
