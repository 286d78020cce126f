"""Live back end: a Plan becomes a torch ``nn.Module`` with torchvision's module layout."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..plan import BlockPlan, Plan, lower
from ..plan import layers as L
from ..plan.backbone import feature_taps
from ..spec import Spec
from .freeze import freeze
from .interface import FeatureInfo, ModelInterface
from .modules import (
    BlurPool2d,
    DropPath,
    EfficientChannelAttention,
    EvoNormS0,
    FilterResponseNormTLU,
    FrozenBatchNorm2d,
    SamePadAvgPool2d,
    SplitAttention,
    SqueezeExcite,
    StdConv2d,
    ZeroPadShortcut,
)

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}
_INPLACE = {"relu", "leaky_relu", "silu", "mish", "hardswish", "elu"}


def make_activation(kind: str, inplace: bool = True) -> nn.Module:
    cls = ACTIVATIONS[kind]
    return cls(inplace=True) if inplace and kind in _INPLACE else cls()


def make_layer(layer: L.Layer) -> nn.Module:
    """One plan layer as a torch module."""
    if isinstance(layer, L.StdConv):  # before Conv: a StdConv is a Conv with standardised weights
        return StdConv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias,
            eps=layer.eps,
        )
    if isinstance(layer, L.EvoNormS0):
        return EvoNormS0(layer.channels, layer.groups, layer.eps, layer.apply_act)
    if isinstance(layer, L.FilterResponseNorm):
        return FilterResponseNormTLU(layer.channels, layer.eps, layer.apply_act)
    if isinstance(layer, L.ConstantPad):
        return nn.ConstantPad2d(layer.padding, layer.value)
    if isinstance(layer, L.Conv):
        return nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            bias=layer.bias,
        )
    if isinstance(layer, L.Norm):
        if layer.type == "batch":
            return nn.BatchNorm2d(layer.channels, eps=layer.eps, momentum=layer.momentum)
        if layer.type == "group":
            return nn.GroupNorm(layer.groups, layer.channels, eps=layer.eps)
        if layer.type == "frozen_batch":
            return FrozenBatchNorm2d(layer.channels, eps=layer.eps)
    if isinstance(layer, L.Act):
        return make_activation(layer.type, layer.inplace)
    if isinstance(layer, L.Pool):
        if layer.type == "max":
            return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
        if layer.type == "avg":
            return nn.AvgPool2d(
                layer.kernel,
                layer.stride,
                layer.padding,
                ceil_mode=layer.ceil_mode,
                count_include_pad=layer.count_include_pad,
            )
        if layer.type == "avg_same":
            return SamePadAvgPool2d(layer.kernel)
        return nn.Identity()
    if isinstance(layer, L.Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, L.BlurPool):
        return BlurPool2d(layer.channels, layer.filter_size, layer.stride, layer.padding)
    if isinstance(layer, L.SqueezeExcite):
        return SqueezeExcite(layer.channels, layer.reduced, ACTIVATIONS[layer.activation])
    if isinstance(layer, L.EfficientChannelAttention):
        return EfficientChannelAttention(layer.kernel)
    if isinstance(layer, L.SplitAttention):
        return SplitAttention(
            layer.in_channels,
            layer.out_channels,
            layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            dilation=layer.dilation,
            groups=layer.groups,
            radix=layer.radix,
            attn_channels=layer.attn_channels,
            eps=layer.eps,
            momentum=layer.momentum,
            act_layer=ACTIVATIONS[layer.activation],
        )
    if isinstance(layer, L.ZeroPadShortcut):
        return ZeroPadShortcut(layer.in_channels, layer.out_channels, layer.stride)
    if isinstance(layer, L.Linear):
        return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
    raise TypeError(f"no torch module for plan layer {layer!r}")


def attach(owner: nn.Module, layers: Iterable[L.Layer]) -> list[str]:
    """Add each layer under its dotted path (``downsample.0`` nests in a Sequential).

    Returns the top-level child names in first-use order: the order to run them in.
    """
    order: list[str] = []
    for layer in layers:
        head, _, rest = layer.path.partition(".")
        if head not in order:
            order.append(head)
        if not rest:
            owner.add_module(head, make_layer(layer))
            continue
        container = owner._modules.get(head)
        if container is None:
            container = nn.Sequential()
            owner.add_module(head, container)
        assert container is not None
        container.add_module(rest, make_layer(layer))
    return order


class ResidualBlock(nn.Module):
    """Any block of the plan: basic or bottleneck, any of the activation orders, with its shortcut."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.preact = attach(self, plan.preact)
        self.branch = attach(self, plan.branch)
        self.has_shortcut = plan.shortcut_type != "none"
        self.shortcut = attach(self, plan.shortcut)
        self.after_add = attach(self, plan.after_add)
        # Only what the plan uses: an empty placeholder would still be a node under FX.
        self.drop_path = DropPath(plan.drop_path) if plan.drop_path else None
        self.act_out = make_activation(plan.post_activation) if plan.post_activation else None

    def _run(self, names: list[str], x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = self._modules[name](x)  # type: ignore[misc]
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.preact:
            x = self._run(self.preact, x)
            if self.shortcut:
                # Pre-activation projections read the normalised input.
                shortcut = x
        out = self._run(self.branch, x)
        if self.drop_path is not None:
            out = self.drop_path(out)
        if self.has_shortcut:
            out = out + self._run(self.shortcut, shortcut)
        out = self._run(self.after_add, out)
        if self.act_out is not None:
            out = self.act_out(out)
        return out


class ResNet(ModelInterface):
    """A network assembled from a Plan; ``forward = forward_head(forward_features(x))``, with
    timm's model interface (see :mod:`resnet_gen.live.interface`)."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self.stem = attach(self, plan.stem)
        self.stages = [stage.path for stage in plan.stages]
        for stage in plan.stages:
            self.add_module(stage.path, nn.Sequential(*(ResidualBlock(block) for block in stage.blocks)))
        self.final = attach(self, plan.final)
        self.head = plan.head
        if plan.head is not None:
            self.global_pool: nn.Module = (
                nn.AdaptiveAvgPool2d(1) if plan.head.pool == "avg" else nn.AdaptiveMaxPool2d(1)
            )
            if plan.head.dropout:
                self.head_dropout = nn.Dropout(plan.head.dropout)
            self.fc = make_layer(plan.head.fc) if plan.head.fc is not None else None
        initialize(self, plan)
        freeze(self, plan.frozen)
        self._set_interface(plan)
        if not plan.features:
            self.feature_info = FeatureInfo(feature_taps(plan))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stem:
            x = self._modules[name](x)  # type: ignore[misc]
        for name in self.stages:
            stage = self.get_submodule(name)
            # set_grad_checkpointing: recompute the stage's activations in the backward pass.
            x = checkpoint(stage, x, use_reentrant=False) if self.grad_checkpointing else stage(x)
        for name in self.final:
            x = self._modules[name](x)  # type: ignore[misc]
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, dropout and classifier; ``pre_logits`` stops before the classifier (timm's)."""
        if self.head is None:
            return x
        x = torch.flatten(self.global_pool(x), 1)
        if self.head.dropout:
            x = self.head_dropout(x)
        if pre_logits or self.fc is None:
            return x
        out: torch.Tensor = self.fc(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def initialize(model: nn.Module, plan: Plan) -> None:
    """torchvision's initialisation: kaiming-normal (fan-out) convs, unit norms, zero-init option."""
    if plan.init_scheme == "kaiming":
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
    if plan.zero_init_residual:
        for block in plan.blocks:
            if block.zero_init is not None:
                target = model.get_submodule(f"{block.path}.{block.zero_init}")
                nn.init.zeros_(target.weight)  # type: ignore[arg-type]


def build(spec_or_plan: Spec | Plan, **backbone: Any) -> ResNet:
    """A live ``nn.Module`` for a spec (or plan).

    Keyword arguments override the spec's ``backbone`` section (``features_only``, ``out_indices``,
    ``output_stride``, ``frozen_stages``) and are validated like it. With ``features_only`` the
    module returns a list of feature maps and carries ``feature_info``.
    """
    if backbone:
        if isinstance(spec_or_plan, Plan):
            raise TypeError("backbone options need a Spec; a Plan is already lowered")
        from ..spec.backbone import with_backbone

        spec_or_plan = with_backbone(spec_or_plan, **backbone)
    plan = spec_or_plan if isinstance(spec_or_plan, Plan) else lower(spec_or_plan)
    if plan.decoder is not None:
        from .segmentation import SegmentationResNet

        return SegmentationResNet(plan)
    if plan.features:
        from .features import FeatureResNet

        return FeatureResNet(plan)
    return ResNet(plan)
