"""Rules of the ``backbone`` section that depend on the rest of the spec, and build-time overrides.

Feature numbering, used by ``out_indices`` and ``frozen_stages`` alike: 0 is the stem (its output
before the stem pool, as timm's ``act1`` feature), 1..N are the stages ``layer1``..``layerN``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

if TYPE_CHECKING:
    from .model import BackboneSpec, Spec, StageSpec, StemSpec

Problem = tuple[tuple[str | int, ...], str, Any]


def stem_reduction(stem: StemSpec) -> int:
    """How many times smaller the stem's output is than the input."""
    return stem.reduction


def natural_stride(stem: StemSpec, stages: Sequence[StageSpec]) -> int:
    """The network's output stride without dilation: stem reduction times every stage stride."""
    stride = stem_reduction(stem)
    for stage in stages:
        stride *= stage.stride
    return stride


def backbone_problems(backbone: BackboneSpec, stem: StemSpec, stages: Sequence[StageSpec]) -> list[Problem]:
    """Each way ``backbone`` does not fit this stem and these stages: (key path, message, value)."""
    problems: list[Problem] = []
    count = len(stages)
    if backbone.out_indices is not None:
        if not backbone.features_only:
            problems.append((("out_indices",), "applies only with features_only: true", None))
        for position, index in enumerate(backbone.out_indices):
            if index > count:
                problems.append(
                    (
                        ("out_indices", position),
                        f"feature {index} does not exist; 0 is the stem and 1..{count} the stages",
                        index,
                    )
                )
    if backbone.frozen_stages is not None and backbone.frozen_stages > count:
        problems.append(
            (
                ("frozen_stages",),
                f"frozen_stages {backbone.frozen_stages} is past the last stage; 0 freezes the stem, {count} everything",
                backbone.frozen_stages,
            )
        )
    target = backbone.output_stride
    if target is not None:
        own = natural_stride(stem, stages)
        dilated = [index for index, stage in enumerate(stages) if stage.dilation != 1]
        if dilated:
            problems.append(
                (
                    ("output_stride",),
                    f"set either output_stride or stages[{dilated[0]}].dilation, not both",
                    target,
                )
            )
        elif target > own:
            problems.append(
                (
                    ("output_stride",),
                    f"this network's output stride is {own}; output_stride can only lower it by dilating the last stages (got {target})",
                    target,
                )
            )
    return problems


def raise_problems(problems: list[Problem]) -> None:
    """Raise the problems as one pydantic error, each at its own key path inside ``backbone``."""
    if not problems:
        return
    details = [
        InitErrorDetails(type=PydanticCustomError("value_error", message), loc=path, input=value)
        for path, message, value in problems
    ]
    raise ValidationError.from_exception_data("BackboneSpec", details)


def with_backbone(spec: Spec, **options: Any) -> Spec:
    """``spec`` with some ``backbone`` fields replaced, validated like a spec file (backbone options
    change no shape the planner checks, so validation is the whole check).

    ``rg.build(spec, features_only=True, out_indices=(1, 2, 3, 4))`` goes through here.
    """
    from ..errors import Location
    from .load import validate
    from .yaml_source import LocatedMapping

    data = spec.model_dump(mode="python", exclude_unset=True)
    data["backbone"] = {**data.get("backbone", {}), **options}
    return validate(LocatedMapping(data, {(): Location("build()")}, "build()"))
