"""A block kind written as a user would add one: one 3x3 conv, its norm, and a learnt scale per
channel (its layer kind ChannelScale, whose torch module is runtime/channel_scale.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from ..plan.layers import KindLayer, Size
from ..spec.model import BlockSpec
from .registry import BlockKind, Branch, BranchInputs, Widths, register


class ScaledBlockSpec(BlockSpec):
    type: Literal["scaled"] = "scaled"
    init: float = Field(default=1.0, description="`scaled` only: the scale's starting value.")


@dataclass(frozen=True)
class ChannelScale(KindLayer):
    channels: int
    init: float
    out_size: Size

    @property
    def params(self) -> int:
        return self.channels

    @property
    def macs(self) -> int:
        return self.channels * self.out_size[0] * self.out_size[1]

    def torch_module(self) -> Any:
        from ..runtime.channel_scale import ChannelScale as Module

        return Module(self.channels, self.init)

    def text(self) -> tuple[str, str, str, str]:
        return ("norm", "channel scale", f"{self.channels} channels", f"scale {self.channels}")

    def report(self) -> list[str]:
        return [f"scale {self.channels}"]

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def counts(self) -> tuple[int, int, int, int]:
        return (self.macs, self.macs, self.macs, self.macs)

    def saved(self) -> tuple[int, int]:
        return self.macs, 0

    def buffer_elements(self) -> int:
        return 0


@register
class ScaledKind(BlockKind):
    name = "scaled"
    options = ScaledBlockSpec
    class_name = "ScaledBlock"
    title = "scaled block"
    inner_convs = 1
    inner_shape = "[conv1] width of a scaled block"
    default_expansion = 1

    def widths(self, block: BlockSpec, width: int) -> Widths:
        return Widths(width, width, first_is_mid=True, mid_is_out=True)

    def lower(self, block: BlockSpec, inputs: BranchInputs) -> Branch:
        assert isinstance(block, ScaledBlockSpec)
        make = inputs.make
        conv = make.conv("conv1", inputs.in_channels, inputs.out_channels, 3, inputs.stride, inputs.size)
        scale = ChannelScale("scale", inputs.out_channels, block.init, conv.out_size)
        layers = (conv, *make.norm("bn1", inputs.out_channels), scale)
        return Branch(layers, conv.out_size, (), (("conv1", "out_channels"),))
