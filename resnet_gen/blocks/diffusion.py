"""The diffusion ResBlock (Ho et al. 2020; diffusers' ``ResnetBlock2D``): GroupNorm, activation,
3x3 conv, the time embedding's projection added (``add``) or applied as a scale and a shift after
the second GroupNorm (``scale_shift``), activation, dropout, 3x3 conv, plus the shortcut (a 1x1 or
3x3 projection where the channels change).

It is the one kind with a second input: its branch splits where the time embedding enters (the
``time_add`` or ``time_scale_shift`` step between ``branch`` and ``tail``), and its ``time`` layers
project the embedding. The U-Net's planner (:mod:`resnet_gen.unet.plan`) asks
:meth:`DiffusionKind.resblock` for each of its blocks; a classifier has no time embedding to give
it, so a classifier spec that names it is refused. Module names are diffusers' (``norm1``,
``conv1``, ``time_emb_proj``, ``conv_shortcut``) but the activations', which have no parameters
and are named by position (``act1``, ``act2``, ``time_act``) where diffusers shares one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from ..choices import ACTIVATION_CLASSES, ActivationType, BlockStep
from ..plan.layers import Act, Conv, Dropout, KindLayer, Layer, Norm, Size
from ..plan.types import BlockPlan
from ..spec.model import BlockSpec, Rate
from .basic import DROPOUT_HELP
from .registry import BlockKind, Branch, BranchInputs, Widths, register

TimeInjection = Literal["add", "scale_shift"]
INJECTION_OPS: dict[TimeInjection, Literal["time_add", "time_scale_shift"]] = {
    "add": "time_add",
    "scale_shift": "time_scale_shift",
}


class DiffusionBlockSpec(BlockSpec):
    type: Literal["diffusion"] = "diffusion"
    time_injection: TimeInjection = Field(
        default="add",
        description="`diffusion` only (a U-Net sets it as `unet.time_injection`): add the time embedding's projection before the second norm (`add`), or scale and shift after it (`scale_shift`).",
    )
    dropout: Rate = Field(default=0.0, description=DROPOUT_HELP)
    shortcut_kernel: Literal[1, 3] = Field(
        default=1,
        description="`diffusion` only (a U-Net sets it as `unet.shortcut_kernel`): the projection shortcut's kernel where the channels change.",
    )


@dataclass(frozen=True)
class TimeProjection(KindLayer):
    """``time_emb_proj``: the time embedding (activated) to one value per channel, or a scale and a
    shift per channel (``scale_shift``): an ``nn.Linear`` of ``in_features`` to ``channels`` or
    ``2 * channels``, counted, saved and named as every linear is."""

    in_features: int
    channels: int
    scale_shift: bool

    @property
    def out_features(self) -> int:
        return self.channels * (2 if self.scale_shift else 1)

    @property
    def params(self) -> int:
        return self.in_features * self.out_features + self.out_features

    @property
    def macs(self) -> int:
        return self.in_features * self.out_features

    def torch_module(self) -> Any:
        from torch import nn

        return nn.Linear(self.in_features, self.out_features)

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.out_features,)

    def counts(self) -> tuple[int, int, int, int]:
        # ptflops' nn.Linear hook adds the bias
        return (self.macs, self.macs, self.macs + self.out_features, self.out_features)

    def saved(self) -> tuple[int, int]:
        return (0, 0)  # its input, as a linear's

    def buffer_elements(self) -> int:
        return 0

    def text(self) -> tuple[str, str, str, str]:
        target = "scale, shift" if self.scale_shift else "per channel"
        return ("linear", "time projection", f"{self.in_features} \u2192 {self.out_features} ({target})", "time proj")

    def report(self) -> list[str]:
        return [f"time linear {self.out_features}"]


@dataclass(frozen=True)
class TimeScaleShift(KindLayer):
    """``h * (1 + scale) + shift``, the ``time_scale_shift`` step, as the report places it: no
    parameters, counted by no tool; the product saves ``h`` and ``1 + scale``."""

    channels: int
    params = 0
    macs = 0

    def out_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def counts(self) -> tuple[int, int, int, int]:
        return (0, 0, 0, 0)

    def saved(self) -> tuple[int, int]:
        return (self.channels, 0)

    def buffer_elements(self) -> int:
        return 0


_NOT_IN_CLASSIFIERS = (
    "a diffusion ResBlock reads a time embedding, which only a U-Net has; write a `layout: unet` spec"
    " (see specs/unet_tiny.yaml), or use basic or bottleneck here"
)


@register
class DiffusionKind(BlockKind):
    name = "diffusion"
    options = DiffusionBlockSpec
    class_name = "ResBlock"
    title = "diffusion ResBlock"
    inner_convs = 1
    inner_shape = "[conv1] width of a diffusion ResBlock"
    default_expansion = 1

    def widths(self, block: BlockSpec, width: int) -> Widths:
        return Widths(width, width, first_is_mid=True, mid_is_out=True)

    def classifier_problem(self) -> str | None:
        return _NOT_IN_CLASSIFIERS

    def lower(self, block: BlockSpec, inputs: BranchInputs) -> Branch:
        raise NotImplementedError(_NOT_IN_CLASSIFIERS)  # refused at validation (classifier_problem)

    def resblock(
        self,
        block: DiffusionBlockSpec,
        *,
        path: str,
        in_channels: int,
        out_channels: int,
        time_channels: int,
        size: Size,
        groups: int,
        eps: float,
        activation: ActivationType,
    ) -> BlockPlan:
        """One ResBlock of a U-Net from ``in_channels`` to ``out_channels`` at ``size``, reading a
        time embedding of ``time_channels``; its activations run out of place, as diffusers'."""
        scale_shift = block.time_injection == "scale_shift"

        def norm(name: str, channels: int) -> Norm:
            return Norm(name, "group", channels, eps, 0.1, groups)

        def conv(name: str, cin: int, kernel: int) -> Conv:
            return Conv(name, cin, out_channels, kernel, 1, kernel // 2, 1, 1, True, size)

        # The branch up to the injection, and after it: the second norm is before the scale and
        # shift, after the addition.
        branch: list[Layer] = [
            norm("norm1", in_channels),
            Act("act1", activation, False),
            conv("conv1", in_channels, 3),
        ]
        tail: list[Layer] = [Act("act2", activation, False)]
        if scale_shift:
            branch.append(norm("norm2", out_channels))
        else:
            tail.insert(0, norm("norm2", out_channels))
        if block.dropout:
            tail.append(Dropout("dropout", block.dropout))
        tail.append(conv("conv2", out_channels, 3))
        time = (
            Act("time_act", activation, False),
            TimeProjection("time_emb_proj", time_channels, out_channels, scale_shift),
        )
        projects = in_channels != out_channels
        shortcut = (conv("conv_shortcut", in_channels, block.shortcut_kernel),) if projects else ()
        steps = [
            BlockStep("fork"),
            BlockStep("branch"),
            BlockStep(INJECTION_OPS[block.time_injection]),
            BlockStep("tail"),
        ]
        steps += [BlockStep("shortcut")] if projects else []
        steps.append(BlockStep("add"))
        return BlockPlan(
            path=path,
            stage=0,
            index=0,
            type=self.name,
            order="pre",  # a norm and an activation before each conv
            in_channels=in_channels,
            first_channels=out_channels,
            mid_channels=out_channels,
            out_channels=out_channels,
            stride=1,
            dilation=1,
            first_dilation=1,
            groups=1,
            in_size=size,
            out_size=size,
            shortcut_type="projection" if projects else "identity",
            steps=tuple(steps),
            preact=(),
            branch=tuple(branch),
            shortcut=shortcut,
            after_add=(),
            attention=None,
            drop_path=0.0,
            post_activation=None,
            zero_init=None,
            width_names=(("conv1", "out_channels"), ("conv2", "out_channels"), ("conv_shortcut", "out_channels")),
            time=time,
            tail=tuple(tail),
            time_channels=time_channels,
        )

    def emitted_doc(self, block: BlockPlan) -> str | None:
        return (
            f"Diffusion ResBlock: {step_words(block, shortcut=False)}; plus the shortcut, the input or a"
            " projection where the channels change. Diffusers' ``ResnetBlock2D``: its parameter names and"
            " its arithmetic."
        )

    def detail(self, block: BlockPlan) -> str:
        return f"[{step_words(block)}]"


def step_words(block: BlockPlan, *, shortcut: bool = True) -> str:
    """A ResBlock's forward in words, read off its steps and layers (with its own shortcut)."""

    def words(layers: tuple[Layer, ...]) -> list[str]:
        out = []
        for layer in layers:
            if isinstance(layer, Norm):
                out.append(f"GroupNorm {layer.groups}")
            elif isinstance(layer, Act):
                out.append(ACTIVATION_CLASSES[layer.type])
            elif isinstance(layer, Conv):
                out.append(f"{layer.kernel}x{layer.kernel} conv")
            elif isinstance(layer, Dropout):
                out.append(f"dropout {layer.rate:g}")
        return out

    parts: list[str] = []
    for step in block.steps:
        if step.op == "branch":
            parts += words(block.branch)
        elif step.op == "tail":
            parts += words(block.tail)
        elif step.op == "time_add":
            parts.append("+ the time embedding's projection")
        elif step.op == "time_scale_shift":
            parts.append("the time embedding's projection as a scale and a shift (x * (1 + scale) + shift)")
        elif step.op == "add" and shortcut:
            kernel = next((layer.kernel for layer in block.shortcut if isinstance(layer, Conv)), None)
            parts.append(f"+ a {kernel}x{kernel} projection" if kernel else "+ the input")
    return ", ".join(parts)
