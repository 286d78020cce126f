"""Live back end: a Plan becomes a torch ``nn.Module`` with torchvision's module layout."""

from __future__ import annotations

import linecache
from collections.abc import Iterable
from typing import Any, Optional, SupportsIndex, assert_never

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..choices import ACTIVATION_CLASSES, IN_PLACE_ACTIVATIONS, ActivationType, HeadPoolType
from ..plan import BlockPlan, Plan
from ..plan import layers as L
from ..plan.backbone import feature_taps
from ..runtime.attention import EfficientChannelAttention, SqueezeExcite
from ..runtime.convs import StdConv2d
from ..runtime.norms import EvoNormS0, FilterResponseNormTLU, FrozenBatchNorm2d
from ..runtime.pooling import BlurPool2d, SamePadAvgPool2d
from ..runtime.residual import DropPath, DropPathTiedStage, TiedStage, ZeroPadShortcut
from .freeze import freeze
from .interface import ModelInterface, feature_info


def make_activation(kind: ActivationType, inplace: bool = True) -> nn.Module:
    cls: type[nn.Module] = getattr(nn, ACTIVATION_CLASSES[kind])
    return cls(inplace=True) if inplace and kind in IN_PLACE_ACTIVATIONS else cls()


def _conv(layer: L.Conv) -> nn.Module:
    if isinstance(layer, L.StdConv):  # a StdConv is a Conv with standardised weights
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


def _norm(layer: L.Norm) -> nn.Module:
    kind = layer.type
    match kind:
        case "batch":
            return nn.BatchNorm2d(layer.channels, eps=layer.eps, momentum=layer.momentum)
        case "group":
            return nn.GroupNorm(layer.groups, layer.channels, eps=layer.eps)
        case "frozen_batch":
            return FrozenBatchNorm2d(layer.channels, eps=layer.eps)
        case _:
            assert_never(kind)


def _pool(layer: L.Pool) -> nn.Module:
    kind = layer.type
    match kind:
        case "max":
            return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
        case "avg":
            return nn.AvgPool2d(
                layer.kernel,
                layer.stride,
                layer.padding,
                ceil_mode=layer.ceil_mode,
                count_include_pad=layer.count_include_pad,
            )
        case "avg_same":
            return SamePadAvgPool2d(layer.kernel)
        case "identity":  # keeps timm's module path where a stride-1 block does not pool
            return nn.Identity()
        case _:
            assert_never(kind)


def make_layer(layer: L.Layer) -> nn.Module:
    """One plan layer as a torch module: one case per layer kind of ``plan.layers.Layer``."""
    match layer:
        case L.Conv():  # StdConv included
            return _conv(layer)
        case L.Norm():
            return _norm(layer)
        case L.EvoNormS0():
            return EvoNormS0(layer.channels, layer.groups, layer.eps, layer.apply_act)
        case L.FilterResponseNorm():
            return FilterResponseNormTLU(layer.channels, layer.eps, layer.apply_act)
        case L.Act():
            return make_activation(layer.type, layer.inplace)
        case L.Pool():
            return _pool(layer)
        case L.ConstantPad():
            return nn.ConstantPad2d(layer.padding, layer.value)
        case L.Dropout():
            return nn.Dropout(layer.rate)
        case L.BlurPool():
            return BlurPool2d(layer.channels, layer.filter_size, layer.stride, layer.padding)
        case L.SqueezeExcite():
            return SqueezeExcite(layer.channels, layer.reduced, make_activation(layer.activation))
        case L.EfficientChannelAttention():
            return EfficientChannelAttention(layer.kernel)
        case L.ZeroPadShortcut():
            return ZeroPadShortcut(layer.in_channels, layer.out_channels, layer.stride)
        case L.Linear():
            return nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
        case L.ConvTranspose():
            return nn.ConvTranspose2d(
                layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding, bias=layer.bias
            )
        case L.KindLayer():  # a block kind's own layer builds itself (blocks/resnest.py)
            module: nn.Module = layer.torch_module()
            return module
        case _:
            assert_never(layer)


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


def _top_level(layers: Iterable[L.Layer]) -> list[str]:
    """The child names ``attach`` gives ``layers``, in first-use order."""
    return list(dict.fromkeys(layer.path.partition(".")[0] for layer in layers))


def forward_source(plan: BlockPlan) -> str:
    """``plan.steps`` written out as the block's ``forward``: one line per module call, as the
    emitted classes read (``templates/block.py.j2``). Compiled once per distinct block, it is the
    live block's forward, which TorchScript, FX and torch.compile read like any hand-written one."""
    lines = ["def forward(self, x: torch.Tensor, time: Optional[torch.Tensor] = None) -> torch.Tensor:"]

    def calls(layers: Iterable[L.Layer], target: str = "x", source: str = "x") -> None:
        for name in _top_level(layers):
            if not name.isidentifier():
                raise ValueError(f"{plan.path}.{name}: a block's module names must be identifiers")
            lines.append(f"    {target} = self.{name}({source})")
            source = target

    for step in plan.steps:
        match step.op:
            case "fork":
                lines.append("    shortcut = x")
            case "preact":
                calls(plan.preact)
                lines.append("    preact = x")
            case "shortcut":
                calls(plan.shortcut, "shortcut", "preact" if step.reads == "preact" else "shortcut")
            case "branch":
                calls(plan.branch)
            case "time_add" | "time_scale_shift":
                lines.append(
                    '    assert time is not None, "this block reads a time embedding: call it as block(x, time)"'
                )
                calls(plan.time, "projected", "time")
                if step.op == "time_add":
                    lines.append("    x = x + projected[:, :, None, None]")
                else:
                    lines.append("    scale, shift = projected[:, :, None, None].chunk(2, dim=1)")
                    lines.append("    x = x * (1 + scale) + shift")
            case "tail":
                calls(plan.tail)
            case "drop_path":
                if plan.drop_path:
                    lines.append("    x = self.drop_path(x)")
            case "scale":
                assert plan.step_size is not None
                lines.append(f"    x = x * {plan.step_size!r}")
            case "add":
                lines.append("    x = x + shortcut")
            case "after_add":
                calls(plan.after_add)
            case "activation":
                assert plan.post_activation is not None
                lines.append("    x = self.act_out(x)")
            case _:
                assert_never(step.op)
    lines.append("    return x")
    return "\n".join(lines) + "\n"


_COMPILED: dict[str, type[ResidualBlock]] = {}


def _compiled(source: str) -> type[ResidualBlock]:
    """The ResidualBlock subclass whose forward is ``source`` (one per distinct forward). The
    source is kept in linecache, where ``inspect`` (and so TorchScript) finds it."""
    cls = _COMPILED.get(source)
    if cls is None:
        filename = f"<resnet_gen block forward {len(_COMPILED)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace: dict[str, Any] = {"torch": torch, "Optional": Optional}
        exec(compile(source, filename, "exec"), namespace)
        cls = type(ResidualBlock.__name__, (ResidualBlock,), {"forward": namespace["forward"]})
        cls.__module__, cls.__qualname__ = ResidualBlock.__module__, ResidualBlock.__qualname__
        _COMPILED[source] = cls
    return cls


def _unpickled(source: str) -> ResidualBlock:
    block: ResidualBlock = object.__new__(_compiled(source))
    return block


class ResidualBlock(nn.Module):
    """Any block of the plan, its forward written out of ``plan.steps`` (the block's forward as
    data) by :func:`forward_source`. A block with a second input (a diffusion ResBlock's time
    embedding) takes it as ``forward(x, time)``."""

    def __new__(cls, plan: BlockPlan) -> ResidualBlock:
        block: ResidualBlock = super().__new__(_compiled(forward_source(plan)) if cls is ResidualBlock else cls)
        return block

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.steps_source = forward_source(plan)
        for group in (plan.preact, plan.branch, plan.time, plan.tail, plan.shortcut, plan.after_add):
            attach(self, group)
        # Only what the plan uses: an empty placeholder would still be a node under FX.
        self.drop_path = DropPath(plan.drop_path) if plan.drop_path else None
        self.act_out = make_activation(plan.post_activation) if plan.post_activation else None

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        # Pickled by its forward's source: the compiled class is made again where it is loaded.
        return (_unpickled, (self.steps_source,), dict(self.__dict__))

    def forward(self, x: torch.Tensor, time: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError("built by ResidualBlock(plan), whose class has the plan's forward")


class ResNet(ModelInterface):
    """A network assembled from a Plan; ``forward = forward_head(forward_features(x))``, with
    timm's model interface (see :mod:`resnet_gen.live.interface`)."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self.stem = attach(self, plan.stem)
        self.stages = [stage.path for stage in plan.stages]
        for stage in plan.stages:
            # A tied stage's one block is layerK.0, as the first block of an untied stage is.
            if stage.tied:
                block = ResidualBlock(stage.blocks[0])
                tied = (
                    DropPathTiedStage(block, stage.drop_paths) if stage.drop_paths else TiedStage(block, stage.repeats)
                )
                self.add_module(stage.path, tied)
            else:
                self.add_module(stage.path, nn.Sequential(*(ResidualBlock(block) for block in stage.blocks)))
        self.final = attach(self, plan.final)
        self.head = plan.head
        if plan.head is not None:
            self.global_pool = global_pool(plan.head.pool)
            if plan.head.dropout:
                self.head_dropout = nn.Dropout(plan.head.dropout)
            self.fc = make_layer(plan.head.fc) if plan.head.fc is not None else None
        initialize(self, plan)
        freeze(self, plan.frozen)
        self._set_interface(plan)
        if not plan.features:
            self.feature_info = feature_info(feature_taps(plan))

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


def global_pool(pool: HeadPoolType) -> nn.Module:
    """The head's global pool, to one value per channel."""
    match pool:
        case "avg":
            return nn.AdaptiveAvgPool2d(1)
        case "max":
            return nn.AdaptiveMaxPool2d(1)
        case _:
            assert_never(pool)


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


def build(plan: Plan) -> ResNet:
    """A live ``nn.Module`` for ``plan``; with feature taps (``features_only``) it returns a list of
    feature maps and carries ``feature_info``. ``rg.build`` takes a spec and backbone options."""
    if plan.decoder is not None:
        from .segmentation import SegmentationResNet

        return SegmentationResNet(plan)
    if plan.features:
        from .features import FeatureResNet

        return FeatureResNet(plan)
    return ResNet(plan)
