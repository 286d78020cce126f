"""Report: exact parameters, MACs and shapes, computed from the plan without torch.

Conventions (those of torchvision's published GFLOPS): parameters only (no buffers); MACs count
conv and linear layers (attention's 1x1 convs included) at batch 1 and the spec's input size.
FLOPs are reported as 2 x MACs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .plan import Plan, lower
from .plan.layers import Conv, Pool, Size
from .plan.types import BlockPlan, FeatureTap
from .spec import Spec

if TYPE_CHECKING:
    from .counting import Convention
    from .layer_table import LayerRow
    from .memory_estimate import Dtype, MemoryEstimate, Optimizer
    from .unet.plan import UNetPlan
    from .unet.spec import UNetSpec


@dataclass(frozen=True)
class Row:
    """One line of the paper-style table: a stem, a stage or the head."""

    name: str
    output_size: Size | None
    channels: int
    blocks: int
    params: int
    macs: int
    detail: str


@dataclass(frozen=True)
class Report:
    name: str
    description: str
    input_channels: int
    input_size: Size
    params: int
    macs: int
    rows: tuple[Row, ...]
    features: tuple[FeatureTap, ...] = ()  # backbone: the feature maps returned instead of logits
    frozen: tuple[str, ...] = ()  # backbone: top-level modules kept frozen
    plan: Plan | None = field(default=None, compare=False, repr=False)  # for the counts below

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def _plan(self) -> Plan:
        if self.plan is None:
            raise ValueError("this report was made without its plan; use resnet_gen.analyze(spec)")
        return self.plan

    @property
    def activations(self) -> int:
        """Elements of every conv and linear output at batch 1 (fvcore's and timm's "activations")."""
        from .counting import total_counts

        return total_counts(self._plan()).activations

    def count(self, convention: Convention | str) -> int:
        """MACs as ``torchvision``, ``fvcore`` or ``ptflops`` count them (see resnet_gen.counting)."""
        from .counting import check_convention, total_counts

        return total_counts(self._plan()).convention(check_convention(convention))

    # What ``activations`` counts, as the report prints it.
    activations_counted = "conv + linear outputs, batch 1"

    def row_macs(self, convention: Convention | str) -> dict[str, int]:
        """MACs in ``convention`` per row of the table (``stem``, each stage, ``head``, ``decoder``)."""
        from .counting import check_convention
        from .layer_table import stage_macs

        return stage_macs(self._plan(), check_convention(convention))

    def per_layer(self, depth: int = 2, convention: Convention | str = "torchvision") -> tuple[LayerRow, ...]:
        """torchinfo-style rows down to ``depth``: path, kind, output shape, params, MACs, share."""
        from .counting import check_convention
        from .layer_table import per_layer

        return per_layer(self._plan(), depth, check_convention(convention))

    def memory(self, batch: int = 1, dtype: Dtype | str = "fp32", optimizer: Optimizer | str = "sgd") -> MemoryEstimate:
        """Training-memory estimate of one step (see resnet_gen.memory_estimate)."""
        from .memory_estimate import estimate

        return estimate(self._plan(), batch, dtype, optimizer)


def analyze(spec_or_plan: Spec | Plan | UNetSpec | UNetPlan | str | Path) -> Report:
    """Count parameters and MACs per stage. Accepts a Spec, an already lowered Plan, or a spec
    file or catalog name (loaded as the CLI loads it, with the same located errors); a diffusion
    U-Net's spec, plan, file or name gives its report (:class:`resnet_gen.unet.report.UNetReport`)."""
    if isinstance(spec_or_plan, (str, Path)):
        from .layout_dispatch import load_with_report

        return load_with_report(spec_or_plan)[1]
    if not isinstance(spec_or_plan, (Spec, Plan)):
        from .unet.plan import UNetPlan, lower_unet
        from .unet.report import unet_report

        return unet_report(spec_or_plan if isinstance(spec_or_plan, UNetPlan) else lower_unet(spec_or_plan))
    plan = spec_or_plan if isinstance(spec_or_plan, Plan) else lower(spec_or_plan)
    rows = [
        Row(
            "stem",
            plan.stem_out_size,
            plan.stem_channels,
            0,
            sum(layer.params for layer in plan.stem),
            sum(layer.macs for layer in plan.stem),
            _stem_detail(plan),
        )
    ]
    for stage in plan.stages:
        first = stage.blocks[0]
        rows.append(
            Row(
                stage.path,
                stage.out_size,
                stage.out_channels,
                stage.depth,
                stage.params,
                stage.macs,
                _block_detail(first) + (f" {stage.tied_words}" if stage.tied_words else ""),
            )
        )
    head_layers = plan.final + (plan.head.layers if plan.head else ())
    if head_layers or plan.head is not None:
        classes = plan.head.num_classes if plan.head else 0
        rows.append(
            Row(
                "head",
                (1, 1) if plan.head is not None else plan.stages[-1].out_size,
                classes or plan.feature_channels,
                0,
                sum(layer.params for layer in head_layers),
                sum(layer.macs for layer in head_layers),
                _head_detail(plan),
            )
        )
    if plan.decoder is not None:
        rows.append(decoder_row(plan))
    # The rows hold every layer once (stem, blocks, final layers and head), so their sums are the
    # plan's totals, without rebuilding each layer under its full path as ``plan.layers`` does.
    return Report(
        plan.name,
        plan.description,
        plan.input_channels,
        plan.input_size,
        sum(row.params for row in rows),
        sum(row.macs for row in rows),
        tuple(rows),
        plan.features,
        plan.frozen,
        plan,
    )


def decoder_row(plan: Plan) -> Row:
    """The segmentation decoder's line: its mask comes back at the input's size."""
    from .plan.heads import describe

    decoder = plan.decoder
    assert decoder is not None
    return Row("decoder", plan.input_size, decoder.num_classes, 0, decoder.params, decoder.macs, describe(decoder))


def _stem_detail(plan: Plan) -> str:
    parts = []
    for layer in plan.stem:
        if isinstance(layer, Conv):
            parts.append(
                f"{layer.kernel}x{layer.kernel} conv {layer.out_channels}"
                + (f" /{layer.stride}" if layer.stride > 1 else "")
            )
        elif isinstance(layer, Pool):
            parts.append(f"{layer.kernel}x{layer.kernel} {layer.type} pool /{layer.stride}")
    return ", ".join(parts)


def _block_detail(block: BlockPlan) -> str:
    """The block as the paper's tables write it, in its kind's words (read from the plan's layers,
    never from a width rule: reduce_first and pruned nets give each conv its own width)."""
    from .blocks.registry import kind_of

    return kind_of(block.type).detail(block)


def _head_detail(plan: Plan) -> str:
    if plan.head is None:
        return "feature map"
    parts = [f"global {plan.head.pool} pool"]
    if plan.head.dropout:
        parts.append(f"dropout {plan.head.dropout:g}")
    if plan.head.num_classes:
        parts.append(f"fc {plan.head.num_classes}")
    return ", ".join(parts)
