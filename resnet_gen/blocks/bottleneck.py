"""The bottleneck block (He et al. 2015): 1x1, 3x3, 1x1 convs, torchvision's Bottleneck, with
ResNeXt's groups and base width (Xie et al. 2017) and SENet-154's reduce_first."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from ..plan.layer_builder import anti_alias_layer, size_after
from ..plan.layers import Layer, Size
from ..spec.model import BlockSpec, StageSpec
from .basic import REDUCE_FIRST_HELP, ReduceFirst
from .registry import BlockKind, Branch, BranchInputs, Problem, Widths, register


class GroupedBlockSpec(BlockSpec):
    """The options of blocks whose middle conv is grouped (ResNeXt's width rule)."""

    groups: Annotated[int, Field(ge=1, le=65_536)] = Field(
        default=1, description="`bottleneck` and `resnest` only: groups of the 3x3 conv (ResNeXt's cardinality)."
    )
    width_per_group: Annotated[int, Field(ge=1, le=65_536)] = Field(
        default=64,
        description="`bottleneck` and `resnest` only: ResNeXt's base width (128 for wide ResNets); the 3x3 conv has `int(width * width_per_group / 64) * groups` channels.",
    )


class BottleneckBlockSpec(GroupedBlockSpec):
    type: Literal["bottleneck"] = "bottleneck"
    stride_on: Literal["1x1", "3x3"] = Field(
        default="3x3",
        description="`bottleneck` only: the conv that strides, `3x3` (torchvision's v1.5) or `1x1` (the 2015 paper).",
    )
    reduce_first: ReduceFirst = Field(default=1, description=REDUCE_FIRST_HELP)


class GroupedKind(BlockKind):
    """What the kinds with a grouped middle conv share: the width rule and its rules."""

    inner_convs = 2
    inner_shape = "[conv1, conv2] widths of a bottleneck"
    default_expansion = 4

    def widths(self, block: BlockSpec, width: int) -> Widths:
        assert isinstance(block, GroupedBlockSpec)
        # timm's int(planes * base_width / 64) * cardinality
        mid = int(width * block.width_per_group / 64) * block.groups
        reduce_first = getattr(block, "reduce_first", 1)
        return Widths(mid // reduce_first, mid, first_is_mid=reduce_first == 1)

    def groups(self, block: BlockSpec) -> int:
        assert isinstance(block, GroupedBlockSpec)
        return block.groups

    def width_rule(self, block: BlockSpec, width: int) -> str:
        assert isinstance(block, GroupedBlockSpec)
        return f"int(width {width:,} * width_per_group {block.width_per_group} / 64) * groups {block.groups}"

    def stage_problems(self, block: BlockSpec, stage: StageSpec, here: tuple[str | int, ...]) -> list[Problem]:
        assert isinstance(block, GroupedBlockSpec)
        first = self.widths(block, stage.width).first
        if first < 1 and getattr(block, "reduce_first", 1) == 1:
            least = next(w for w in range(stage.width, 65_537) if self.widths(block, w).first >= 1)
            return [
                (
                    (*here, "width"),
                    f"width {stage.width} leaves the bottleneck no inner channels (int(width * width_per_group {block.width_per_group} / 64) * groups {block.groups} = 0); use width >= {least}",
                    stage.width,
                )
            ]
        return super().stage_problems(block, stage, here)

    def first_stride(self, block: BlockSpec, stride: int) -> int:
        """The stride of the first 1x1 conv (the rest of the block's stride is the middle's)."""
        return 1

    def middle(self, block: BlockSpec, inputs: BranchInputs, size: Size) -> tuple[list[Layer], Size]:
        """The layers between the first 1x1 conv's activation and the last 1x1 conv."""
        raise NotImplementedError

    def lower(self, block: BlockSpec, inputs: BranchInputs) -> Branch:
        """conv1, the middle, conv3, with the norms and activations of the order inside the branch
        (norm names as the basic block's: the norm after conv k is bn{k}, timm's in pre)."""
        make, order = inputs.make, inputs.order
        first, cout = inputs.widths.first, inputs.out_channels
        conv1 = make.conv("conv1", inputs.in_channels, first, 1, self.first_stride(block, inputs.stride), inputs.size)
        norm1, act1 = {"pre": ("bn2", "act2"), "relu_preact": ("bn1", "act2")}.get(order, ("bn1", "act1"))
        layers: list[Layer] = [conv1, *make.norm(norm1, first), make.act(act1)]
        middle, after = self.middle(block, inputs, conv1.out_size)
        layers += middle
        conv3 = make.conv("conv3", inputs.widths.mid, cout, 1, 1, after)
        layers.append(conv3)
        if order in ("post", "relu_before_add", "relu_preact"):
            layers.extend(make.norm("bn3", cout))
        if order == "relu_before_add":
            layers.append(make.act("act3"))
        # Fig. 4(b): the branch's last norm moves after the addition.
        after_add = make.norm("bn3", cout) if order == "bn_after_add" else []
        names = (
            ("conv1", inputs.widths.name_of("first_channels")),
            ("conv2", inputs.widths.name_of("mid_channels")),
            ("conv3", inputs.widths.name_of("out_channels")),
        )
        return Branch(tuple(layers), conv3.out_size, tuple(after_add), names)


@register
class BottleneckKind(GroupedKind):
    name = "bottleneck"
    options = BottleneckBlockSpec
    class_name = "Bottleneck"
    title = "bottleneck"
    fixed: ClassVar[dict[str, Any]] = {"dropout": 0.0}
    refused: ClassVar[dict[str, str]] = {
        "dropout": "dropout applies to basic blocks only; a bottleneck has no dropout between its convs (use drop_path or head.dropout)"
    }

    def first_stride(self, block: BlockSpec, stride: int) -> int:
        assert isinstance(block, BottleneckBlockSpec)
        return stride if block.stride_on == "1x1" else 1

    def anti_alias_problem(self, block: BlockSpec, index: int) -> str | None:
        assert isinstance(block, BottleneckBlockSpec)
        if block.stride_on != "3x3":
            return f"anti_alias needs bottlenecks that stride in the 3x3 (stride_on: 3x3); stages[{index}] strides in the 1x1"
        return None

    def middle(self, block: BlockSpec, inputs: BranchInputs, size: Size) -> tuple[list[Layer], Size]:
        """The grouped 3x3 conv, its norm and activation, and an anti-aliasing pool where it strides."""
        assert isinstance(block, BottleneckBlockSpec)
        make, aa, mid = inputs.make, inputs.anti_alias, inputs.widths.mid
        stride = inputs.stride // self.first_stride(block, inputs.stride)
        use_aa = aa is not None and (stride > 1 or inputs.first_dilation != inputs.dilation)
        conv2 = make.conv(
            "conv2",
            inputs.widths.first,
            mid,
            3,
            1 if use_aa else stride,
            size,
            dilation=inputs.first_dilation,
            groups=block.groups,
        )
        norm2, act2 = {"pre": ("bn3", "act3"), "relu_preact": ("bn2", "act3")}.get(inputs.order, ("bn2", "act2"))
        layers: list[Layer] = [conv2, *make.norm(norm2, mid), make.act(act2)]
        after = conv2.out_size
        if aa is not None and use_aa:
            pool = anti_alias_layer(aa, "aa", mid, stride, after)
            layers.append(pool)
            after = size_after([pool], after)
        return layers, after
