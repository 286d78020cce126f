"""Lowering: a validated Spec becomes a Plan with every block, layer, shape and path resolved."""

from __future__ import annotations

from dataclasses import replace

from ..blocks.registry import BranchInputs, Widths, kind_of
from ..choices import PRE_ACTIVATION_ORDERS, BlockStep, ShortcutKind
from ..errors import SpecError
from ..spec.digest import spec_hash
from ..spec.model import AttentionSpec, BlockSpec, Spec
from .backbone import apply_backbone, stage_geometry, stride_of
from .heads import with_decoder
from .layer_builder import LayerBuilder, anti_alias_layer, eca_kernel, make_divisible, size_after
from .layers import (
    Act,
    ConstantPad,
    Conv,
    EfficientChannelAttention,
    EvoNormS0,
    FilterResponseNorm,
    Layer,
    Linear,
    Norm,
    Pool,
    Size,
    SqueezeExcite,
    ZeroPadShortcut,
    conv_out,
    pool_out,
)
from .types import BlockPlan, HeadPlan, Plan, StagePlan

__all__ = ["anti_alias_layer", "eca_kernel", "lower", "make_divisible"]


def lower(spec: Spec, *, digest: bool = True) -> Plan:
    """Resolve ``spec`` into a :class:`Plan`. Pure Python; raises SpecError for impossible shapes.

    ``digest=False`` leaves the plan's ``spec_hash`` empty: a check that only counts (validate)
    skips serialising the spec, a tenth of lowering it."""
    fingerprint = spec_hash(spec) if digest else ""  # of the spec as written, before width_factor
    spec = _widened(spec)
    make = LayerBuilder(spec.norm, spec.activation, spec.conv)
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
        # The width rule gives every block of a stage the same widths; explicit ones are per block.
        rule = (
            None
            if stage.inner_channels
            else _inner_widths(spec, stage_index, 0, spec.block_for(stage_index), stage.width)
        )
        # A tied stage is one block applied stage.blocks times (validated to keep the shape), each
        # application at the drop-path rate of its depth.
        tied_rates = (
            tuple(_drop_rate(spec, block_number + step, total_blocks) for step in range(stage.blocks))
            if stage.tied and spec.drop_path
            else ()
        )
        for index in range(1 if stage.tied else stage.blocks):
            drop_path = tied_rates[-1] if tied_rates else _drop_rate(spec, block_number, total_blocks)
            path = f"layer{stage_index + 1}.{index}"
            stride = stage_stride if index == 0 else 1
            first_dilation = previous_dilation if index == 0 else dilation
            # A block is fixed by its input and widths (its layers' paths are relative to it), and
            # deep nets repeat one block hundreds of times: lower each distinct one once.
            widths = rule or _inner_widths(spec, stage_index, index, spec.block_for(stage_index), stage.width)
            key = (channels, stride, first_dilation, size, widths)
            if key == previous_key:
                block = _repeated(blocks[-1], path, index, drop_path)
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
                    step_size=stage.step_size if stage.tied else None,
                )
            previous_key = key
            blocks.append(block)
            channels, size = block.out_channels, block.out_size
            block_number += stage.blocks if stage.tied else 1
        stages.append(
            StagePlan(
                f"layer{stage_index + 1}",
                stage_index,
                tuple(blocks),
                stage.width,
                stage_stride,
                dilation,
                tied=stage.tied,
                repeats=stage.blocks if stage.tied else 1,
                step_size=stage.step_size if stage.step_size is not None else 1.0,
                drop_paths=tied_rates,
            )
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
        drop_path=spec.drop_path,
        spec_hash=fingerprint,
    )
    return with_decoder(spec, apply_backbone(spec, _absorb_activations(plan)))


def _drop_rate(spec: Spec, number: int, total_blocks: int) -> float:
    """Stochastic depth's linear rule: 0 at the first block, ``drop_path`` at the last."""
    return spec.drop_path * number / max(total_blocks - 1, 1)


def _repeated(block: BlockPlan, path: str, index: int, drop_path: float) -> BlockPlan:
    """``block`` at another place of its stage. dataclasses.replace would do, but runs every
    field through __init__ again: the slowest step here for 1000-block nets. The twin is a copy of
    the block's fields and of its totals, counted here once for all its twins."""
    block.params, block.macs  # noqa: B018  # cached on the block, so copied with it
    twin = object.__new__(BlockPlan)
    twin.__dict__.update(block.__dict__)
    object.__setattr__(twin, "path", path)  # a frozen dataclass: set as its own __init__ does
    object.__setattr__(twin, "index", index)
    object.__setattr__(twin, "drop_path", drop_path)
    return twin


def _widened(spec: Spec) -> Spec:
    """Apply ``width_factor`` (BiT's xN) to the stem's widths and every stage's width."""
    factor = spec.width_factor
    if factor == 1:
        return spec
    stem = spec.stem.model_copy(update={"width": spec.stem.width * factor, "deep_width": spec.stem.deep_width * factor})
    if stem.layers is not None:
        widened = [
            entry.model_copy(update={"channels": entry.channels * factor}) if entry.channels else entry
            for entry in stem.layers
        ]
        stem = stem.model_copy(update={"layers": widened})
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
    return size_after(stem, size)


def _check_size(size: Size, where: str) -> None:
    if size[0] < 1 or size[1] < 1:
        raise SpecError(
            f"input.size: too small for this network: the feature map shrinks to nothing at {where}; use a larger input.size or fewer strides"
        )


def _listed_stem(spec: Spec, make: LayerBuilder, size: Size) -> tuple[list[Layer], Size]:
    """A ``layers`` stem: its entries as written, entry ``i`` at ``stem_layers.<i>``."""
    assert spec.stem.layers is not None
    layers: list[Layer] = []
    channels = spec.input.channels
    for index, entry in enumerate(spec.stem.layers):
        path = f"stem_layers.{index}"
        if entry.type == "conv":
            assert entry.channels is not None
            kernel, stride, padding = entry.resolved_kernel, entry.resolved_stride, entry.resolved_padding
            out = (conv_out(size[0], kernel, stride, padding), conv_out(size[1], kernel, stride, padding))
            _check_size(out, path)
            layers.append(Conv(path, channels, entry.channels, kernel, stride, padding, 1, 1, bool(entry.bias), out))
            channels, size = entry.channels, out
        elif entry.type == "norm":
            layers.extend(make.norm(path, channels))
        else:
            layers.append(make.act(path))
    return layers, size


def _stem(spec: Spec, make: LayerBuilder, size: Size, *, with_norm: bool) -> tuple[list[Layer], Size]:
    stem = spec.stem
    if stem.layers is not None:
        return _listed_stem(spec, make, size)
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
    make: LayerBuilder,
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
    step_size: float | None = None,
) -> BlockPlan:
    block: BlockSpec = spec.block_for(stage)
    kind = kind_of(block.type)
    out_channels = spec.stage_out_channels(stage)
    order = block.order
    pre = order in PRE_ACTIVATION_ORDERS
    widths = _inner_widths(spec, stage, index, block, width)
    branch = kind.lower(
        block,
        BranchInputs(
            make, in_channels, widths, out_channels, stride, dilation, first_dilation, size, order, spec.anti_alias
        ),
    )
    _check_size(branch.out_size, path)
    layers = list(branch.layers)
    attention = _attention(block.attention, out_channels)
    if attention is not None:
        # timm places attention after the last norm (post) or last conv (pre), before the addition.
        layers.append(attention)

    shortcut_type, shortcut = _shortcut(
        spec, make, in_channels, out_channels, stride, first_dilation, size, pre, stage_dilation=dilation
    )
    _check_shortcut_size(path, shortcut, size, branch.out_size)
    preact = kind.preactivation(make, in_channels, order)
    last_norm = [layer.path for layer in layers if isinstance(layer, Norm)]
    last_conv = [layer.path for layer in layers if isinstance(layer, Conv)]
    # Zero the layer that ends the branch: its last norm, or its last conv where no norm follows it.
    ends_on_conv = order in ("pre", "bn_after_add")
    ends = last_conv if ends_on_conv else last_norm
    zero_init = ends[-1] if ends else None
    residual = shortcut_type != "none"
    steps = kind.steps(order, residual=residual, projects=bool(shortcut))
    scale = step_size if step_size is not None and step_size != 1 else None
    if scale is not None:
        # h + dt * f(h): the branch is scaled after drop-path, before the addition.
        after = BlockStep("drop_path") if BlockStep("drop_path") in steps else BlockStep("branch")
        at = steps.index(after) + 1
        steps = (*steps[:at], BlockStep("scale"), *steps[at:])
    return BlockPlan(
        path=path,
        stage=stage,
        index=index,
        type=block.type,
        order=block.order,
        in_channels=in_channels,
        first_channels=widths.first,
        mid_channels=widths.mid,
        out_channels=out_channels,
        stride=stride,
        dilation=dilation,
        first_dilation=first_dilation,
        groups=kind.groups(block),
        in_size=size,
        out_size=branch.out_size,
        shortcut_type=shortcut_type,
        steps=steps,
        preact=tuple(preact),
        branch=tuple(layers),
        shortcut=tuple(shortcut),
        after_add=branch.after_add,
        attention=block.attention.type if block.attention else None,
        drop_path=drop_path,
        post_activation=spec.activation if order in ("post", "bn_after_add") else None,
        zero_init=zero_init,
        width_names=branch.width_names + tuple((layer.path, "out_channels") for layer in shortcut if _writes(layer)),
        step_size=scale,
    )


def _writes(layer: Layer) -> bool:
    """Whether a shortcut layer writes the block's output channels (its projection conv)."""
    return isinstance(layer, (Conv, ZeroPadShortcut))


def _inner_widths(spec: Spec, stage: int, index: int, block: BlockSpec, width: int) -> Widths:
    """The block's first and middle widths: explicit ``inner_channels`` or its kind's width rule."""
    own = spec.stages[stage]
    if own.inner_channels is not None:
        widths = own.inner_channels[index]
        return Widths(widths[0], widths[-1])
    rule = kind_of(block.type).widths(block, width)
    # Explicit output channels are a quantity of their own, whatever the width rule says.
    return replace(rule, mid_is_out=False) if own.out_channels is not None else rule


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
    make: LayerBuilder,
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
