"""The basic block (He et al. 2015): two 3x3 convs, torchvision's BasicBlock."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from ..plan.layer_builder import anti_alias_layer, size_after
from ..plan.layers import Dropout, Layer
from ..spec.model import BlockSpec, Rate
from .registry import BlockKind, Branch, BranchInputs, Widths, register

ReduceFirst = Annotated[int, Field(ge=1, le=64)]
REDUCE_FIRST_HELP = (
    "`basic` and `bottleneck` only: the first conv has `1 / reduce_first` of the middle width (2 in SENet-154)."
)
DROPOUT_HELP = (
    "`basic` and `diffusion` only: dropout rate between the block's two convs (wide ResNets; a U-Net sets its"
    " ResBlocks' as `unet.dropout`)."
)
_NO_GROUPS = (
    "a basic block supports only groups: 1 and width_per_group: 64; use type: bottleneck for ResNeXt or wide variants"
)


class BasicBlockSpec(BlockSpec):
    type: Literal["basic"] = "basic"
    reduce_first: ReduceFirst = Field(default=1, description=REDUCE_FIRST_HELP)
    dropout: Rate = Field(default=0.0, description=DROPOUT_HELP)


@register
class BasicKind(BlockKind):
    name = "basic"
    options = BasicBlockSpec
    class_name = "BasicBlock"
    title = "basic block"
    inner_convs = 1
    inner_shape = "[conv1] width of a basic block"
    default_expansion = 1
    fixed: ClassVar[dict[str, Any]] = {"stride_on": "3x3", "groups": 1, "width_per_group": 64}
    refused: ClassVar[dict[str, str]] = {
        "groups": _NO_GROUPS,
        "width_per_group": _NO_GROUPS,
        "stride_on": "stride_on applies to bottleneck blocks only; a basic block strides in its first 3x3",
    }

    def widths(self, block: BlockSpec, width: int) -> Widths:
        assert isinstance(block, BasicBlockSpec)
        rule = block.reduce_first == 1
        return Widths(width // block.reduce_first, width, first_is_mid=rule, mid_is_out=self.expansion(block) == 1)

    def lower(self, block: BlockSpec, inputs: BranchInputs) -> Branch:
        """conv1 and conv2 with the norms and activations of the order that sit inside the branch.
        Module names follow torchvision's (post) and timm's (pre); the other orders keep post's norm
        names (the norm after conv k is bn{k}) and number activations in running order."""
        assert isinstance(block, BasicBlockSpec)
        make, order, aa, stride = inputs.make, inputs.order, inputs.anti_alias, inputs.stride
        mid, cout = inputs.widths.first, inputs.out_channels
        use_aa = aa is not None and (stride > 1 or inputs.first_dilation != inputs.dilation)
        conv1 = make.conv(
            "conv1", inputs.in_channels, mid, 3, 1 if use_aa else stride, inputs.size, dilation=inputs.first_dilation
        )
        layers: list[Layer] = [conv1]
        norm1, act1 = {"pre": ("bn2", "act2"), "relu_preact": ("bn1", "act2")}.get(order, ("bn1", "act1"))
        layers.extend(make.norm(norm1, mid))
        layers.append(make.act(act1))
        after = conv1.out_size
        if aa is not None and use_aa:
            pool = anti_alias_layer(aa, "aa", mid, stride, after)
            layers.append(pool)
            after = size_after([pool], after)
        if block.dropout:
            layers.append(Dropout("dropout", block.dropout))
        conv2 = make.conv("conv2", mid, cout, 3, 1, after, dilation=inputs.dilation)
        layers.append(conv2)
        if order in ("post", "relu_before_add", "relu_preact"):
            layers.extend(make.norm("bn2", cout))
        if order == "relu_before_add":
            layers.append(make.act("act2"))
        # Fig. 4(b): the branch's last norm moves after the addition.
        after_add = make.norm("bn2", cout) if order == "bn_after_add" else []
        names = (("conv1", inputs.widths.name_of("first_channels")), ("conv2", inputs.widths.name_of("out_channels")))
        return Branch(tuple(layers), conv2.out_size, tuple(after_add), names)
