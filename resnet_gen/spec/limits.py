"""Size limits on what a spec produces: every width the plan will hold, and the total parameter
count. Field bounds cap what a spec says (a width of 65,536, 65,536 groups); their products can
still ask for billions of channels, so these are checked on the products, each problem located at
the key that made it too big."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..plan.types import Plan
    from .model import Spec

MAX_CHANNELS = 65_536
# The largest published ResNet (BiT-M R152x4) has 936 million; 2 billion float32 weights are 8 GB.
MAX_PARAMS = 2_000_000_000

Problem = tuple[tuple[str | int, ...], str, object]


def width_problems(spec: Spec) -> list[Problem]:
    """Each width of the stem or a block's inner convs past MAX_CHANNELS, at the key to change."""
    factor = spec.width_factor
    problems: list[Problem] = []
    stem_widths = [("width", spec.stem.width)]
    if spec.stem.type in ("deep", "deep_tiered"):
        stem_widths.append(("deep_width", spec.stem.deep_width))
    for stem_key, width in stem_widths:
        if width * factor > MAX_CHANNELS:
            problems.append(
                (
                    ("width_factor",),
                    f"width_factor {factor} makes stem.{stem_key} {width * factor:,} channels; at most {MAX_CHANNELS:,} are supported",
                    factor,
                )
            )
    for index, stage in enumerate(spec.stages):
        if stage.inner_channels is not None:
            continue  # given as counts, each bounded by its field
        from ..blocks.registry import kind_of

        block = spec.block_for(index)
        kind = kind_of(block.type)
        width = stage.width * factor
        widths = kind.widths(block, width)
        inner = max(widths.first, widths.mid)
        if inner <= MAX_CHANNELS:
            continue
        key = _culprit(spec, index)
        if any(key == known for known, _, _ in problems):
            continue  # one line per key: the first stage it makes too wide
        problems.append(
            (
                key,
                f"gives stages[{index}] blocks {inner:,} inner channels ({kind.width_rule(block, width)});"
                f" at most {MAX_CHANNELS:,} are supported",
                None,
            )
        )
    return problems


def _culprit(spec: Spec, index: int) -> tuple[str | int, ...]:
    """The key that made a stage's inner width too big: groups or width_per_group where set
    (the stage's own block options when it has them), else the stage's width."""
    block = spec.block_for(index)
    own = spec.stages[index].block is not None
    for key, default in (("groups", 1), ("width_per_group", 64)):
        value = getattr(block, key, default)  # kinds without the option have its default
        if value != default:
            if own and value != getattr(spec.block, key, default):
                return ("stages", index, "block", key)
            return ("block", key)
    return ("width_factor",) if spec.width_factor > 1 else ("stages", index, "width")


def params_problem(plan: Plan, width_factor: int) -> str | None:
    """``key: message`` (the planner's form) when the network has more than MAX_PARAMS parameters,
    blaming ``width_factor`` when it widens the net, else the largest stage's width."""
    counts = [stage.params for stage in plan.stages]
    outside = (*plan.stem, *plan.final, *(plan.head.layers if plan.head is not None else ()))
    decoder = plan.decoder.params if plan.decoder is not None else 0
    total = sum(counts) + sum(layer.params for layer in outside) + decoder
    if total <= MAX_PARAMS:
        return None
    if decoder > max(counts, default=0):
        return (
            f"head.decoder: the network has {total:,} parameters ({decoder:,} in the decoder);"
            f" at most {MAX_PARAMS:,} are supported; give the decoder fewer channels"
        )
    largest = max(range(len(counts)), key=counts.__getitem__) if counts else 0
    key = "width_factor" if width_factor > 1 else f"stages[{largest}].width"
    return (
        f"{key}: the network has {total:,} parameters ({counts[largest]:,} in stages[{largest}]);"
        f" at most {MAX_PARAMS:,} are supported"
    )
