"""Lowering: a validated Spec becomes a Plan with every block, layer, shape and path resolved."""

from __future__ import annotations

import math
from dataclasses import replace

from ..choices import PRE_ACTIVATION_ORDERS, BlockOrder, ShortcutKind
from ..errors import SpecError
from ..spec.model import AntiAliasSpec, AttentionSpec, BlockSpec, ConvSpec, NormSpec, Spec
from ..spec.stage_options import block_mid_width
from .backbone import apply_backbone, stage_geometry, stride_of
from .heads import with_decoder
from .layers import (
    Act,
    BlurPool,
    ConstantPad,
    Conv,
    Dropout,
    EfficientChannelAttention,
    EvoNormS0,
    FilterResponseNorm,
    Layer,
    Linear,
    Norm,
    Pool,
    Size,
    SplitAttention,
    SqueezeExcite,
    StdConv,
    ZeroPadShortcut,
    conv_out,
    pool_out,
)
from .types import BlockPlan, HeadPlan, Plan, StagePlan


def make_divisible(value: float, divisor: int, min_value: int | None = None, round_limit: float = 0.0) -> int:
    """Round to the nearest multiple of ``divisor`` (at least ``min_value``, else ``divisor``), one
    more step where that loses more than ``1 - round_limit`` of ``value``: timm's make_divisible."""
    rounded = max(min_value or divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def eca_kernel(channels: int, gamma: int = 2, beta: int = 1) -> int:
    """ECA-Net's adaptive kernel size: odd, at least 3, growing with log2(channels)."""
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


class _Builder:
    """Small helper that turns (kind, channels) into layers with the spec's norm and activation."""

    def __init__(self, norm: NormSpec, activation: str, conv: ConvSpec | None = None) -> None:
        self.norm_spec = norm
        self.activation = activation
        self.conv_spec = conv or ConvSpec()

    def conv(
        self,
        path: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int,
        size: Size,
        *,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> Conv:
        padding = dilation * (kernel - 1) // 2
        out = (
            conv_out(size[0], kernel, stride, padding, dilation),
            conv_out(size[1], kernel, stride, padding, dilation),
        )
        if self.conv_spec.type == "weight_standardized":
            if cin // groups * kernel * kernel < 2:
                # One weight per filter standardises to zero (and torch refuses the statistics).
                raise SpecError(
                    f"conv.type: weight_standardized needs at least 2 weights per filter, but {path} has 1"
                    f" ({cin // groups} input channel, {kernel}x{kernel} kernel); use plain convs or more input channels"
                )
            eps = self.conv_spec.resolved_eps
            return StdConv(path, cin, cout, kernel, stride, padding, dilation, groups, bias, out, eps)
        return Conv(path, cin, cout, kernel, stride, padding, dilation, groups, bias, out)

    def norm(self, path: str, channels: int) -> list[Layer]:
        if self.norm_spec.type == "none":
            return []
        spec = self.norm_spec
        # Norms with their own nonlinearity start without it; _absorb_activations gives it to them.
        if spec.type == "evonorm_s0":
            return [EvoNormS0(path, channels, spec.groups, spec.eps, apply_act=False)]
        if spec.type == "frn":
            return [FilterResponseNorm(path, channels, spec.eps, apply_act=False)]
        return [Norm(path, spec.type, channels, spec.eps, spec.momentum, spec.groups)]

    def act(self, path: str, *, inplace: bool = True) -> Act:
        return Act(path, self.activation, inplace)


def lower(spec: Spec) -> Plan:
    """Resolve ``spec`` into a :class:`Plan`. Pure Python; raises SpecError for impossible shapes."""
    spec = _widened(spec)
    make = _Builder(spec.norm, spec.activation, spec.conv)
    size = spec.input.hw
    order = spec.block.order
    stem, size = _stem(spec, make, size, with_norm=order != "pre")
    channels = spec.stem.width

    total_blocks = sum(stage.blocks for stage in spec.stages)
    stages: list[StagePlan] = []
    block_number = 0
    dilation = 1
    geometry = stage_geometry(spec, stride_of(stem))
    for stage_index, stage in enumerate(spec.stages):
        blocks: list[BlockPlan] = []
        previous_key: object = None
        previous_dilation = dilation
        stage_stride, dilation = geometry[stage_index]
        for index in range(stage.blocks):
            drop_path = spec.drop_path * block_number / max(total_blocks - 1, 1)
            path = f"layer{stage_index + 1}.{index}"
            stride = stage_stride if index == 0 else 1
            first_dilation = previous_dilation if index == 0 else dilation
            # A block is fixed by its input and widths (its layers' paths are relative to it), and
            # deep nets repeat one block hundreds of times: lower each distinct one once.
            widths = _inner_widths(spec, stage_index, index, spec.block_for(stage_index), stage.width)
            key = (channels, stride, first_dilation, size, widths)
            if key == previous_key:
                # dataclasses.replace would do, but is the slowest step here for 1000-block nets.
                block = BlockPlan(**{**vars(blocks[-1]), "path": path, "index": index, "drop_path": drop_path})
            else:
                block = _block(
                    spec,
                    make,
                    path=path,
                    stage=stage_index,
                    index=index,
                    in_channels=channels,
                    width=stage.width,
                    stride=stride,
                    dilation=dilation,
                    first_dilation=first_dilation,
                    size=size,
                    drop_path=drop_path,
                )
            previous_key = key
            blocks.append(block)
            channels, size = block.out_channels, block.out_size
            block_number += 1
        stages.append(
            StagePlan(f"layer{stage_index + 1}", stage_index, tuple(blocks), stage.width, stage_stride, dilation)
        )

    final: tuple[Layer, ...] = ()
    # Pre-activation nets end on an addition: the last block's output gets its own activation.
    if order == "pre":
        final = (*make.norm("norm", channels), make.act("final_act"))
    elif order == "relu_preact":
        final = (make.act("final_act"),)
    head = None
    if spec.head is not None:
        fc = Linear("fc", channels, spec.head.num_classes) if spec.head.num_classes else None
        head = HeadPlan(spec.head.pool, spec.head.dropout, fc, channels, spec.head.num_classes)
    plan = Plan(
        name=spec.name,
        description=spec.description,
        family=spec.family,
        input_channels=spec.input.channels,
        input_size=spec.input.hw,
        stem=tuple(stem),
        stem_out_size=_stem_size(stem, spec.input.hw),
        stem_channels=spec.stem.width,
        stages=tuple(stages),
        final=final,
        head=head,
        init_scheme=spec.init.scheme,
        zero_init_residual=spec.init.zero_init_residual,
        activation=spec.activation,
        norm=spec.norm.type,
    )
    return with_decoder(spec, apply_backbone(spec, _absorb_activations(plan)))


def _widened(spec: Spec) -> Spec:
    """Apply ``width_factor`` (BiT's xN) to the stem's widths and every stage's width."""
    factor = spec.width_factor
    if factor == 1:
        return spec
    stem = spec.stem.model_copy(update={"width": spec.stem.width * factor, "deep_width": spec.stem.deep_width * factor})
    stages = [stage.model_copy(update={"width": stage.width * factor}) for stage in spec.stages]
    return spec.model_copy(update={"stem": stem, "stages": stages, "width_factor": 1})


def _absorb(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """An activation right after a norm with its own nonlinearity (EvoNorm-S0, FRN) is that
    nonlinearity: the norm applies it and the separate activation goes, as in timm."""
    out: list[Layer] = []
    for layer in layers:
        previous = out[-1] if out else None
        if isinstance(layer, Act) and isinstance(previous, (EvoNormS0, FilterResponseNorm)) and not previous.apply_act:
            out[-1] = replace(previous, apply_act=True)
        else:
            out.append(layer)
    return tuple(out)


def _absorb_activations(plan: Plan) -> Plan:
    if plan.norm not in ("evonorm_s0", "frn"):
        return plan
    stages = tuple(
        replace(
            stage,
            blocks=tuple(
                replace(
                    block, preact=_absorb(block.preact), branch=_absorb(block.branch), shortcut=_absorb(block.shortcut)
                )
                for block in stage.blocks
            ),
        )
        for stage in plan.stages
    )
    return replace(plan, stem=_absorb(plan.stem), stages=stages, final=_absorb(plan.final))


def _stem_size(stem: list[Layer], size: Size) -> Size:
    for layer in stem:
        if isinstance(layer, (Conv, Pool, BlurPool)):
            size = layer.out_size
    return size


def _check_size(size: Size, where: str) -> None:
    if size[0] < 1 or size[1] < 1:
        raise SpecError(
            f"input.size: too small for this network: the feature map shrinks to nothing at {where}; use a larger input.size or fewer strides"
        )


def _stem(spec: Spec, make: _Builder, size: Size, *, with_norm: bool) -> tuple[list[Layer], Size]:
    stem = spec.stem
    cin = spec.input.channels
    layers: list[Layer] = []
    if stem.type == "conv":
        conv = make.conv("conv1", cin, stem.width, stem.kernel, stem.stride, size)
        layers.append(conv)
    else:
        first = 3 * (stem.deep_width // 4) if stem.type == "deep_tiered" else stem.deep_width
        widths = (first, stem.deep_width, stem.width)
        current, channels_in = size, cin
        for position, cout in enumerate(widths):
            index = position * 3
            conv = make.conv(f"conv1.{index}", channels_in, cout, 3, stem.stride if position == 0 else 1, current)
            layers.append(conv)
            current, channels_in = conv.out_size, cout
            if position < 2:
                layers.extend(make.norm(f"conv1.{index + 1}", cout))
                layers.append(make.act(f"conv1.{index + 2}"))
    size = _stem_size(layers, size)
    if with_norm:
        layers.extend(make.norm("bn1", stem.width))
        layers.append(make.act("act1"))
    aa = spec.anti_alias
    if stem.pool == "max" and aa is not None:
        # timm: a 2x2 average pool replaces the max pool; a blur pool follows it run at stride 1.
        if aa.type == "avg":
            layers.append(anti_alias_layer(aa, "maxpool", stem.width, 2, size))
        else:
            layers.append(Pool("maxpool.0", "max", 3, 1, 1, False, True, size))
            layers.append(anti_alias_layer(aa, "maxpool.1", stem.width, 2, size))
    elif stem.pool == "max":
        out = (pool_out(size[0], 3, 2, 1, False), pool_out(size[1], 3, 2, 1, False))
        layers.append(Pool("maxpool", "max", 3, 2, 1, False, True, out))
    elif stem.pool == "max_zero_pad":
        padded = (size[0] + 2, size[1] + 2)
        layers.append(ConstantPad("maxpool.0", 1, 0.0, padded))
        out = (pool_out(padded[0], 3, 2, 0, False), pool_out(padded[1], 3, 2, 0, False))
        layers.append(Pool("maxpool.1", "max", 3, 2, 0, False, True, out))
    elif stem.pool == "conv":
        conv = make.conv("maxpool.0", stem.width, stem.width, 3, 1 if aa else 2, size)
        pool: list[Layer] = [conv]
        if aa is not None:
            pool.append(anti_alias_layer(aa, "maxpool.1", stem.width, 2, conv.out_size))
        pool.extend(make.norm(f"maxpool.{len(pool)}", stem.width))
        pool.append(make.act(f"maxpool.{len(pool)}"))
        layers.extend(pool)
    size = _stem_size(layers, spec.input.hw)
    _check_size(size, "stem")
    return layers, size


def _block(
    spec: Spec,
    make: _Builder,
    *,
    path: str,
    stage: int,
    index: int,
    in_channels: int,
    width: int,
    stride: int,
    dilation: int,
    first_dilation: int,
    size: Size,
    drop_path: float,
) -> BlockPlan:
    block: BlockSpec = spec.block_for(stage)
    out_channels = spec.stage_out_channels(stage)
    order = block.order
    pre = order in PRE_ACTIVATION_ORDERS
    first, mid = _inner_widths(spec, stage, index, block, width)
    widths = (first, mid)
    lower_branch = {"basic": _basic_branch, "bottleneck": _bottleneck_branch, "resnest": _resnest_branch}[block.type]
    branch, out_size = lower_branch(
        block, make, in_channels, widths, out_channels, stride, dilation, first_dilation, size, order, spec.anti_alias
    )
    _check_size(out_size, path)
    # Fig. 4(b): the branch's last norm moves after the addition.
    after_add: list[Layer] = []
    if order == "bn_after_add":
        after_add = make.norm(f"bn{3 if block.type == 'bottleneck' else 2}", out_channels)

    attention = _attention(block.attention, out_channels)
    if attention is not None:
        # timm places attention after the last norm (post) or last conv (pre), before the addition.
        branch.append(attention)

    shortcut_type, shortcut = _shortcut(
        spec, make, in_channels, out_channels, stride, first_dilation, size, pre, stage_dilation=dilation
    )
    _check_shortcut_size(path, shortcut, size, out_size)
    preact: list[Layer] = []
    if order == "pre":
        preact = [*make.norm("bn1", in_channels), make.act("act1")]
    elif order == "relu_preact":
        # Not in place: an identity shortcut still reads the block's input.
        preact = [make.act("act1", inplace=False)]
    last_norm = [layer.path for layer in branch if isinstance(layer, Norm)]
    last_conv = [layer.path for layer in branch if isinstance(layer, Conv)]
    # Zero the layer that ends the branch: its last norm, or its last conv where no norm follows it.
    ends_on_conv = order in ("pre", "bn_after_add")
    zero_init = last_conv[-1] if ends_on_conv else (last_norm[-1] if last_norm else None)
    return BlockPlan(
        path=path,
        stage=stage,
        index=index,
        type=block.type,
        order=block.order,
        in_channels=in_channels,
        mid_channels=mid,
        out_channels=out_channels,
        stride=stride,
        dilation=dilation,
        first_dilation=first_dilation,
        groups=block.groups if block.type != "basic" else 1,
        in_size=size,
        out_size=out_size,
        shortcut_type=shortcut_type,
        preact=tuple(preact),
        branch=tuple(branch),
        shortcut=tuple(shortcut),
        after_add=tuple(after_add),
        attention=block.attention.type if block.attention else None,
        drop_path=drop_path,
        post_activation=spec.activation if order in ("post", "bn_after_add") else None,
        zero_init=zero_init,
    )


def _inner_widths(spec: Spec, stage: int, index: int, block: BlockSpec, width: int) -> tuple[int, int]:
    """(first conv's width, grouped 3x3's width): explicit ``inner_channels`` or timm's width rule."""
    inner = spec.stages[stage].inner_channels
    if inner is not None:
        widths = inner[index]
        return widths[0], widths[-1]
    mid = block_mid_width(block, width)
    return mid // block.reduce_first, mid


def anti_alias_layer(aa: AntiAliasSpec, path: str, channels: int, stride: int, size: Size) -> Layer:
    """timm's ``create_aa``: a ``stride`` x ``stride`` average pool, or a blur pool of ``stride``."""
    if aa.type == "avg":
        out = (pool_out(size[0], stride, stride, 0, False), pool_out(size[1], stride, stride, 0, False))
        return Pool(path, "avg", stride, stride, 0, False, True, out)
    filter_size = aa.filter_size or 3
    padding = ((stride - 1) + (filter_size - 1)) // 2
    if padding >= min(size):
        raise SpecError(
            f"input.size: too small for this network: at {path} a {size[0]}x{size[1]} map is too small for a blur pool's reflect padding of {padding}; use a larger input.size"
        )
    out = (conv_out(size[0], filter_size, stride, padding), conv_out(size[1], filter_size, stride, padding))
    return BlurPool(path, channels, filter_size, stride, padding, out)


def _check_shortcut_size(path: str, shortcut: list[Layer], size: Size, out_size: Size) -> None:
    """The two paths of a block must meet at one size (an anti-aliasing pool floors odd sizes)."""
    skip = size
    for layer in shortcut:
        if isinstance(layer, (Conv, Pool)):
            skip = layer.out_size
        elif isinstance(layer, ZeroPadShortcut):
            skip = (-(-size[0] // layer.stride), -(-size[1] // layer.stride))
    if shortcut and skip != out_size:
        raise SpecError(
            f"input.size: does not fit this network: at {path} the branch gives a {out_size[0]}x{out_size[1]} map but the shortcut {skip[0]}x{skip[1]};"
            " use an input size the network's strides divide"
        )


def _basic_branch(
    block: BlockSpec,
    make: _Builder,
    cin: int,
    widths: tuple[int, int],
    cout: int,
    stride: int,
    dilation: int,
    first_dilation: int,
    size: Size,
    order: BlockOrder,
    aa: AntiAliasSpec | None = None,
) -> tuple[list[Layer], Size]:
    """conv1 and conv2 with the norms and activations of ``order`` that sit inside the branch.
    Module names follow torchvision's (post) and timm's (pre); the other orders keep post's norm
    names (the norm after conv k is bn{k}) and number activations in running order."""
    layers: list[Layer] = []
    mid = widths[0]
    use_aa = aa is not None and (stride > 1 or first_dilation != dilation)
    conv1 = make.conv("conv1", cin, mid, 3, 1 if use_aa else stride, size, dilation=first_dilation)
    layers.append(conv1)
    norm1, act1 = {"pre": ("bn2", "act2"), "relu_preact": ("bn1", "act2")}.get(order, ("bn1", "act1"))
    layers.extend(make.norm(norm1, mid))
    layers.append(make.act(act1))
    after = conv1.out_size
    if aa is not None and use_aa:
        pool = anti_alias_layer(aa, "aa", mid, stride, after)
        layers.append(pool)
        after = _stem_size([pool], after)
    if block.dropout:
        layers.append(Dropout("dropout", block.dropout))
    conv2 = make.conv("conv2", mid, cout, 3, 1, after, dilation=dilation)
    layers.append(conv2)
    if order in ("post", "relu_before_add", "relu_preact"):
        layers.extend(make.norm("bn2", cout))
    if order == "relu_before_add":
        layers.append(make.act("act2"))
    return layers, conv2.out_size


def _bottleneck_branch(
    block: BlockSpec,
    make: _Builder,
    cin: int,
    widths: tuple[int, int],
    cout: int,
    stride: int,
    dilation: int,
    first_dilation: int,
    size: Size,
    order: BlockOrder,
    aa: AntiAliasSpec | None = None,
) -> tuple[list[Layer], Size]:
    """conv1, conv2 and conv3 with the norms and activations of ``order`` inside the branch (names
    as :func:`_basic_branch`)."""
    first, mid = widths
    stride_1x1, stride_3x3 = (stride, 1) if block.stride_on == "1x1" else (1, stride)
    use_aa = aa is not None and (stride_3x3 > 1 or first_dilation != dilation)
    layers: list[Layer] = []
    conv1 = make.conv("conv1", cin, first, 1, stride_1x1, size)
    conv2 = make.conv(
        "conv2",
        first,
        mid,
        3,
        1 if use_aa else stride_3x3,
        conv1.out_size,
        dilation=first_dilation,
        groups=block.groups,
    )
    after = conv2.out_size
    pool: list[Layer] = []
    if aa is not None and use_aa:
        pool = [anti_alias_layer(aa, "aa", mid, stride_3x3, after)]
        after = _stem_size(pool, after)
    conv3 = make.conv("conv3", mid, cout, 1, 1, after)
    if order == "pre":
        layers += [
            conv1,
            *make.norm("bn2", first),
            make.act("act2"),
            conv2,
            *make.norm("bn3", mid),
            make.act("act3"),
            *pool,
            conv3,
        ]
        return layers, conv3.out_size
    act1, act2 = ("act2", "act3") if order == "relu_preact" else ("act1", "act2")
    layers += [conv1, *make.norm("bn1", first), make.act(act1)]
    layers += [conv2, *make.norm("bn2", mid), make.act(act2), *pool]
    layers.append(conv3)
    if order != "bn_after_add":
        layers.extend(make.norm("bn3", cout))
    if order == "relu_before_add":
        layers.append(make.act("act3"))
    return layers, conv3.out_size


def _resnest_branch(
    block: BlockSpec,
    make: _Builder,
    cin: int,
    widths: tuple[int, int],
    cout: int,
    stride: int,
    dilation: int,
    first_dilation: int,
    size: Size,
    order: BlockOrder,
    aa: AntiAliasSpec | None = None,
) -> tuple[list[Layer], Size]:
    """timm's ResNestBottleneck: 1x1-BN-act, the split-attention 3x3 (its own norms and
    activations), 1x1-BN. With ``avd`` a strided block downsamples with a 3x3 average pool before
    (``avd_first``) or after the split attention, which then runs at stride 1."""
    first, mid = widths
    norm = make.norm_spec
    if norm.type != "batch":
        raise SpecError(
            f"norm.type: a resnest block's split attention uses batch norms, not {norm.type}; use norm: batch"
        )
    split_groups = block.groups * block.radix
    if first % split_groups or mid % block.groups:
        raise SpecError(
            f"block.radix: the split-attention conv has {first} input channels, not divisible by groups x radix = {split_groups}; use a width the product divides"
        )
    avd = block.avd and stride > 1

    def avd_pool(at: Size) -> Pool:
        out = (pool_out(at[0], 3, stride, 1, False), pool_out(at[1], 3, stride, 1, False))
        return Pool("avd_first" if block.avd_first else "avd_last", "avg", 3, stride, 1, False, True, out)

    conv1 = make.conv("conv1", cin, first, 1, 1, size)
    layers: list[Layer] = [conv1, *make.norm("bn1", first), make.act("act1")]
    current = conv1.out_size
    if avd and block.avd_first:
        pool = avd_pool(current)
        layers.append(pool)
        current = pool.out_size
    split_stride = 1 if avd else stride
    current = (
        conv_out(current[0], 3, split_stride, first_dilation, first_dilation),
        conv_out(current[1], 3, split_stride, first_dilation, first_dilation),
    )
    attn_channels = make_divisible(first * block.radix * 0.25, 8, min_value=32, round_limit=0.9)
    layers.append(
        SplitAttention(
            "conv2",
            first,
            mid,
            3,
            split_stride,
            first_dilation,
            first_dilation,
            block.groups,
            block.radix,
            attn_channels,
            norm.eps,
            norm.momentum,
            make.activation,
            current,
        )
    )
    if avd and not block.avd_first:
        pool = avd_pool(current)
        layers.append(pool)
        current = pool.out_size
    conv3 = make.conv("conv3", mid, cout, 1, 1, current)
    layers += [conv3, *make.norm("bn3", cout)]
    return layers, conv3.out_size


def _attention(attention: AttentionSpec | None, channels: int) -> Layer | None:
    if attention is None:
        return None
    if attention.type == "se":
        reduced = make_divisible(attention.reduced_width(channels), attention.round_to)
        return SqueezeExcite("se", channels, reduced, "relu")
    kernel = attention.kernel or eca_kernel(channels)
    return EfficientChannelAttention("se", channels, kernel)


def _shortcut(
    spec: Spec,
    make: _Builder,
    cin: int,
    cout: int,
    stride: int,
    dilation: int,
    size: Size,
    pre: bool,
    *,
    stage_dilation: int = 1,
) -> tuple[ShortcutKind, list[Layer]]:
    kind = spec.shortcut.type
    changes = stride != 1 or cin != cout
    if kind == "none":
        return "none", []
    if kind == "zero_pad":
        if not changes:
            return "identity", []
        return "zero_pad", [ZeroPadShortcut("downsample", cin, cout, stride)]
    if not changes and kind != "projection_all":
        return "identity", []
    # Pre-activation shortcuts take the already-normalised input: a bare conv (He et al. 2016).
    norm = (lambda path, channels: []) if pre else make.norm
    if kind == "avg_down":
        layers: list[Layer] = []
        if stride != 1:
            out = (pool_out(size[0], 2, stride, 0, True), pool_out(size[1], 2, stride, 0, True))
            layers.append(Pool("downsample.0", "avg", 2, stride, 0, True, False, out))
            size = out
        elif stage_dilation > 1:
            # A stage dilated for the output stride keeps timm's 2x2 pool at stride 1 (AvgPool2dSame):
            # zero-padded on the right and bottom so the size holds.
            layers.append(Pool("downsample.0", "avg_same", 2, 1, 0, True, False, size))
        else:
            layers.append(Pool("downsample.0", "identity", 1, 1, 0, False, True, size))
        layers.append(make.conv("downsample.1", cin, cout, 1, 1, size))
        layers.extend(norm("downsample.2", cout))
        return "avg_down", layers
    # timm's downsample_conv: a kxk kernel only where the block strides or dilates.
    kernel = 1 if stride == 1 and stage_dilation == 1 else spec.shortcut.kernel
    conv = make.conv("downsample.0", cin, cout, kernel, stride, size, dilation=dilation if kernel > 1 else 1)
    return "projection", [conv, *norm("downsample.1", cout)]
