"""The spec language: pydantic models that are the single definition of what a spec may say.

The JSON Schema editors use (``resnet-gen schema``) is exported from these models, and every
rule a user can break is a validator here, with a message that says what would be right.
"""

from __future__ import annotations

import functools
import math
import types
import typing
import unicodedata
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializationInfo,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError

from ..choices import ActivationType, AttentionType, BlockOrder, InitScheme, NormType
from .limits import MAX_CHANNELS

# Bounds keep absurd specs (a billion blocks, width 2**40) from ever reaching the planner.
Count = Annotated[int, Field(ge=1, le=10_000)]
Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
# Lowering is linear in blocks; ResNet-1202 has 600. More than this is a typo or an attack.
MAX_TOTAL_BLOCKS = 2_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_silent_conversion(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse what pydantic's lax mode would quietly convert into a number: YAML's true/false
        (``blocks: true`` is not 1) and quoted text where only an integer fits (``blocks: "2"``).
        Text stays allowed for float fields, because YAML 1.1 reads ``1e-5`` as text."""
        # Most values are numbers and nested mappings, which hold nothing to refuse (a bool is an
        # int, so ints are matched by type).
        if info.field_name is None or type(value) in (int, float, dict) or value is None:
            return value
        kinds = _field_kinds(cls, info.field_name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool) and bool not in kinds and kinds & {int, float}:
                raise PydanticCustomError("number_type", "must be a number, not true or false")
            if isinstance(item, str) and int in kinds and not kinds & {str, float}:
                raise PydanticCustomError("int_type", "must be an integer, not text")
            if isinstance(item, str):
                _check_visible(item)
        return value


def _check_visible(text: str) -> None:
    """Text reaches diagrams and generated source: no control or invisible formatting characters
    (a NUL breaks Graphviz, a right-to-left override disguises source). Line breaks and tabs stay
    allowed; descriptions fold them into spaces."""
    if text.isprintable():  # no control or format character (nor a tab or line break) at all
        return
    for position, char in enumerate(text, start=1):
        if char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf"):
            raise PydanticCustomError(
                "value_error",
                "contains the invisible character {char} at position {position}; remove it",
                {"char": f"U+{ord(char):04X}", "position": position},
            )


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits at


def one_line(text: str) -> str:
    """Text printed on one line of a table or report (a family, a reference) has no line break,
    which would forge a line of output or end a Markdown table row."""
    for position, char in enumerate(text, start=1):
        if char in _LINE_BREAKS:
            raise PydanticCustomError(
                "value_error",
                "contains a line break ({char}) at position {position}; write it on one line",
                {"char": f"U+{ord(char):04X}", "position": position},
            )
    return text


@functools.cache
def _field_kinds(model: type[BaseModel], field_name: str) -> frozenset[Any]:
    """The scalar kinds of one model field, worked out once (the check runs on every value)."""
    return frozenset(_scalar_kinds(model.model_fields[field_name].annotation))


def _scalar_kinds(annotation: Any) -> set[Any]:
    """The Python types a field's annotation accepts, looking through Annotated, unions, Literal
    and list/tuple items; models count as themselves (their string shorthands are theirs)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType, list, tuple):
        return set().union(*(_scalar_kinds(arg) for arg in typing.get_args(annotation) if arg is not Ellipsis))
    if origin is Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    return {annotation}


def _shorthand(field_name: str, value: Any) -> Any:
    """Let ``norm: batch`` stand for ``norm: {type: batch}``."""
    return {field_name: value} if isinstance(value, str) else value


class InputSpec(_Strict):
    """The tensor the network takes: channels and spatial size (one number for square inputs)."""

    channels: Annotated[int, Field(ge=1, le=4096)] = Field(
        default=3, description="Channels of the input image: 3 for RGB, 1 for greyscale."
    )
    size: (
        Annotated[int, Field(ge=1, le=16_384)]
        | tuple[Annotated[int, Field(ge=1, le=16_384)], Annotated[int, Field(ge=1, le=16_384)]]
    ) = Field(
        default=224,
        description="Height and width of the input: one number for a square input, or `[height, width]`. Reports, diagrams and MAC counts are computed at this size.",
    )

    @property
    def hw(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else self.size


class NormSpec(_Strict):
    """Normalisation after each conv (before it, in pre-activation blocks).

    ``evonorm_s0`` (EvoNorm-S0, Liu et al. 2020) and ``frn`` (filter response norm with its TLU,
    Singh & Krishnan 2019) carry their own nonlinearity, as timm's layers do: where a norm is
    followed by the activation, these apply theirs instead and ``activation`` is not added; where
    a norm has no activation after it (the last norm of a post-activation branch), only their
    affine part runs. ``groups`` applies to ``group`` and ``evonorm_s0``.
    """

    type: NormType = Field(
        default="batch",
        description="The norm layer: `batch` (BatchNorm2d), `frozen_batch` (fixed statistics and affine terms, as torchvision's FrozenBatchNorm2d), `group` (GroupNorm), `evonorm_s0` (EvoNorm-S0), `frn` (filter response norm with its TLU) or `none`.",
    )
    eps: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=1e-5, description="Added to the variance (for `frn`, the mean square) for numerical stability."
    )
    momentum: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.1,
        description="`batch` only: the running statistics' momentum, as PyTorch's (the weight of each new batch).",
    )
    groups: Annotated[int, Field(ge=1, le=4096)] = Field(
        default=32,
        description="`group` and `evonorm_s0` only: channel groups; every normalised channel count must be divisible by it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return _shorthand("type", value)


class ConvSpec(_Strict):
    """The stem, block and shortcut convolutions (not attention or the classifier).

    ``plain``: ordinary convs. ``weight_standardized``: each output filter's weights are normalised
    to zero mean and unit variance before use (Qiao et al. 2019), with ``eps`` added to the
    variance, as timm's StdConv2d: unset, ``eps`` is timm's 1e-6 (BiT uses ``eps: 1.0e-8``).
    """

    type: Literal["plain", "weight_standardized"] = Field(
        default="plain",
        description="`plain` convs, or `weight_standardized`: each filter normalised to zero mean and unit variance before use (timm's StdConv2d).",
    )
    eps: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        default=None,
        description="`weight_standardized` only: added to each filter's variance; unset means timm's 1e-6.",
    )

    @property
    def resolved_eps(self) -> float:
        return 1e-6 if self.eps is None else self.eps

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return _shorthand("type", value)

    @model_validator(mode="after")
    def _eps_for_standardized(self) -> ConvSpec:
        if self.type == "plain" and self.eps is not None:
            raise ValueError("eps applies to weight_standardized convs only")
        return self


class StemLayerSpec(_Strict):
    """One entry of a ``layers`` stem: a conv (``channels``, ``kernel``, ``stride``, ``padding``,
    ``bias``), the spec's norm, or the spec's activation."""

    type: Literal["conv", "norm", "act"] = Field(
        description="`conv`: a 2-D conv; `norm`: the spec's norm layer; `act`: the spec's activation."
    )
    channels: Channels | None = Field(default=None, description="`conv` only: output channels.")
    kernel: Annotated[int, Field(ge=1, le=11)] | None = Field(
        default=None, description="`conv` only: kernel size; unset means 3."
    )
    stride: Annotated[int, Field(ge=1, le=4)] | None = Field(
        default=None, description="`conv` only: stride; unset means 1."
    )
    padding: Annotated[int, Field(ge=0, le=5)] | None = Field(
        default=None, description="`conv` only: zero padding on each side; unset means `(kernel - 1) // 2`."
    )
    bias: bool | None = Field(default=None, description="`conv` only: a bias term; unset means none.")

    CONV_KEYS: ClassVar[tuple[str, ...]] = ("channels", "kernel", "stride", "padding", "bias")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return _shorthand("type", value)

    @model_validator(mode="after")
    def _keys_fit_type(self) -> StemLayerSpec:
        from .backbone import raise_problems

        if self.type == "conv" and self.channels is None:
            raise_problems([(("channels",), "a conv entry needs channels (its output channels)", None)])
        if self.type != "conv":
            given = [key for key in self.CONV_KEYS if getattr(self, key) is not None]
            raise_problems([((key,), f"{key} applies to conv entries only", getattr(self, key)) for key in given])
        return self

    @property
    def resolved_kernel(self) -> int:
        return 3 if self.kernel is None else self.kernel

    @property
    def resolved_stride(self) -> int:
        return 1 if self.stride is None else self.stride

    @property
    def resolved_padding(self) -> int:
        return (self.resolved_kernel - 1) // 2 if self.padding is None else self.padding


class StemSpec(_Strict):
    """The layers before the first stage.

    ``conv``: one ``kernel``x``kernel`` conv (7x7 stride 2 as torchvision; 3x3 stride 1 for CIFAR).
    ``deep``: three 3x3 convs of ``deep_width``, ``deep_width``, ``width`` channels (ResNet-C).
    ``deep_tiered``: as deep with ``3 * (deep_width // 4)`` channels in the first conv (timm's rule).
    timm's ``stem_width`` is ``deep_width``; its deep stems end in ``width = 2 * stem_width`` channels.
    ``pool``: ``max`` (3x3 stride 2), ``conv`` (a strided 3x3 conv + norm + act in its place) or ``none``.
    ``max_zero_pad``: a 1-pixel zero border, then an unpadded 3x3 stride-2 max pool (BiT's "fixed"
    padding; unlike ``max`` the border takes part in the maximum, which matters for negative inputs).
    ``layers``: the entries of ``layers`` in order (convs, norms, activations), nothing added: entry
    ``i`` is the module ``stem_layers.<i>`` (state_dict keys ``stem_layers.0.weight``, ...); ``width`` is the
    last conv's channels and there is no pool.
    """

    type: Literal["conv", "deep", "deep_tiered", "layers"] = Field(
        default="conv",
        description="`conv`: one `kernel` x `kernel` conv; `deep`: three 3x3 convs (ResNet-C); `deep_tiered`: as `deep` with `3 * (deep_width // 4)` channels in the first conv; `layers`: the entries of `layers`, as written.",
    )
    layers: Annotated[list[StemLayerSpec], Field(min_length=1, max_length=32)] | None = Field(
        default=None,
        description="`layers` stems only: the stem's convs, norms and activations in order (modules `stem_layers.0`, `stem_layers.1`, ...).",
    )
    width: Channels = Field(default=64, description="Output channels of the stem (of its last conv).")
    kernel: Literal[1, 3, 5, 7] = Field(
        default=7, description="`conv` stems only: the conv's kernel size (7 as torchvision, 3 for CIFAR nets)."
    )
    stride: Literal[1, 2] = Field(default=2, description="Stride of the stem's first conv.")
    deep_width: Channels = Field(
        default=32,
        description="`deep` and `deep_tiered` stems only: channels of the first two convs (timm's `stem_width`).",
    )
    pool: Literal["max", "max_zero_pad", "conv", "none"] = Field(
        default="max",
        description="Downsampling after the stem convs: `max` (3x3 stride-2 max pool), `max_zero_pad` (a zero border, then an unpadded 3x3 stride-2 max pool, as BiT), `conv` (a strided 3x3 conv + norm + activation) or `none`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _layers_set_width(cls, value: Any) -> Any:
        """A ``layers`` stem's width is its last conv's channels, and it has no pool."""
        from .backbone import raise_problems

        if not isinstance(value, dict) or value.get("type") != "layers" or not isinstance(value.get("layers"), list):
            return value
        convs = [
            entry.get("channels")
            for entry in value["layers"]
            if isinstance(entry, dict) and entry.get("type") == "conv"
        ]
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        if not convs:
            problems.append((("layers",), "a layers stem needs at least one conv entry", None))
        elif isinstance(convs[-1], int) and value.get("width", convs[-1]) != convs[-1]:
            problems.append(
                (
                    ("width",),
                    f"a layers stem's width is its last conv's channels ({convs[-1]}); leave width unset",
                    value["width"],
                )
            )
        if value.get("pool", "none") != "none":
            problems.append((("pool",), "a layers stem has no pool; write its layers out instead", value["pool"]))
        for key in ("kernel", "stride", "deep_width"):
            if key in value:
                problems.append(
                    ((key,), f"{key} does not apply to a layers stem; each conv entry has its own", value[key])
                )
        raise_problems(problems)
        width = convs[-1] if convs and isinstance(convs[-1], int) else value.get("width", 64)
        return {**value, "width": width, "pool": "none"}

    @model_validator(mode="after")
    def _layers_for_layers_type(self) -> StemSpec:
        if self.type == "layers" and self.layers is None:
            raise ValueError("a layers stem needs layers: its convs, norms and activations in order")
        if self.type != "layers" and self.layers is not None:
            raise ValueError("layers applies to stems of type: layers only")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_layers(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Stems of the other types dump as they always have (and the emitted files' spec hash holds).
        data = handler(self)
        if isinstance(data, dict) and self.layers is None:
            data.pop("layers", None)
        return data

    @property
    def reduction(self) -> int:
        """How many times its convs (and pool) shrink the input."""
        if self.layers is not None:
            return math.prod(entry.resolved_stride for entry in self.layers if entry.type == "conv")
        return self.stride * (1 if self.pool == "none" else 2)

    @model_validator(mode="after")
    def _tiered_has_width(self) -> StemSpec:
        if self.type == "deep_tiered" and self.deep_width < 4:
            raise ValueError(
                f"a deep_tiered stem needs deep_width >= 4 (its first conv has 3 * (deep_width // 4) channels); got {self.deep_width}"
            )
        return self


class AttentionSpec(_Strict):
    """Channel attention inside each block: squeeze-and-excitation or ECA.

    SE's reduced width is ``channels / reduction`` (or ``channels * ratio``, timm's ``rd_ratio``),
    rounded to the nearest multiple of ``divisor`` and at least ``divisor``, as timm rounds it.
    Unset, they are reduction 16 and divisor 8 (timm's defaults).
    """

    type: AttentionType = Field(description="`se` (squeeze-and-excitation) or `eca` (efficient channel attention).")
    reduction: Annotated[float, Field(ge=1.0, le=1024.0)] | None = Field(
        default=None, description="`se` only: the reduced width is `channels / reduction`; unset means 16."
    )
    ratio: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        default=None,
        description="`se` only, instead of `reduction`: the reduced width is `channels * ratio` (timm's `rd_ratio`).",
    )
    divisor: Annotated[int, Field(ge=1, le=1024)] | None = Field(
        default=None,
        description="`se` only: the reduced width is rounded to the nearest multiple of this, and is at least this; unset means 8.",
    )
    kernel: Annotated[int, Field(ge=0, le=15)] = Field(
        default=0,
        description="`eca` only: the odd kernel size of its 1-D conv; 0 picks it from the channels (the paper's rule).",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return _shorthand("type", value)

    @model_validator(mode="after")
    def _options_fit_type(self) -> AttentionSpec:
        if self.ratio is not None and self.reduction is not None:
            raise ValueError("give either reduction or ratio (ratio = 1 / reduction), not both")
        if self.type == "eca" and self.kernel % 2 == 0 and self.kernel != 0:
            raise ValueError(f"eca kernel must be odd, or 0 to pick it from the channels (got {self.kernel})")
        if self.type == "eca" and (self.reduction, self.ratio, self.divisor) != (None, None, None):
            raise ValueError("reduction, ratio and divisor apply to se attention only; eca takes kernel")
        if self.type == "se" and self.kernel:
            raise ValueError("kernel applies to eca attention only; se takes reduction (or ratio) and divisor")
        return self

    def reduced_width(self, channels: int) -> float:
        """SE's reduced width before rounding: ``channels * ratio`` or ``channels / reduction``."""
        if self.ratio is not None:
            return channels * self.ratio
        return channels / (self.reduction if self.reduction is not None else 16.0)

    @property
    def round_to(self) -> int:
        return self.divisor if self.divisor is not None else 8


class AntiAliasSpec(_Strict):
    """Anti-aliased downsampling, placed where timm's ``aa_layer`` goes (Zhang 2019).

    Each strided 3x3 conv of a block runs at stride 1 and is followed (after its norm and
    activation) by the downsampling layer ``aa``; the stem's max pool runs at stride 1 followed
    by it (``blur``) or is replaced by it (``avg``); a stem ``pool: conv`` conv runs at stride 1
    followed by it. ``blur``: timm's BlurPool2d, a fixed binomial ``filter_size`` x
    ``filter_size`` filter applied per channel with reflect padding. ``avg``: a 2x2 average pool.
    """

    type: Literal["blur", "avg"] = Field(
        description="`blur` (timm's BlurPool2d, a fixed binomial filter) or `avg` (a 2x2 average pool)."
    )
    filter_size: Annotated[int, Field(ge=2, le=7)] | None = Field(
        default=None, description="`blur` only: the binomial filter's size; unset means 3."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return _shorthand("type", value)

    @model_validator(mode="after")
    def _filter_for_blur(self) -> AntiAliasSpec:
        if self.type == "avg" and self.filter_size is not None:
            raise ValueError("filter_size applies to blur anti-aliasing only; avg is a fixed 2x2 average pool")
        return self


class BlockSpec(_Strict):
    """The residual block. ``width`` of a stage is torchvision's ``planes``: the block's output is
    ``width * expansion`` channels and a bottleneck's middle width is
    ``int(width * width_per_group / 64) * groups``.
    """

    # The options every kind shares; each kind's own are a subclass in resnet_gen.blocks, and a
    # spec's ``block`` is validated by the subclass its ``type`` names (a union discriminated by type).
    # Each kind's validator is built when a spec first uses the kind (validate and build start fast).
    model_config = ConfigDict(defer_build=True)

    # A kind's name, checked against the registry (the kinds are open; see resnet_gen.blocks.registry):
    # each kind's subclass narrows it to Literal[its name], and the schema lists the names as an enum.
    type: str = Field(
        default="basic",
        description="`basic` (two 3x3 convs), `bottleneck` (1x1, 3x3, 1x1 convs) or `resnest` (a bottleneck whose 3x3 is ResNeSt's split attention, Zhang et al. 2020) or `ode` (a Neural-ODE block, Chen et al. 2018); `diffusion` (a diffusion U-Net's ResBlock) is for `layout: unet` specs.",
    )
    expansion: Annotated[int, Field(ge=1, le=64)] | None = Field(
        default=None,
        description="Output channels per unit of the stage's `width`; unset means 1 for `basic`, 4 for `bottleneck`.",
    )
    order: BlockOrder = Field(
        default="post",
        description="Where norms and activations sit (He et al. 2016, Fig. 4): `post` after each conv, the last activation after the addition (v1, (a)); `bn_after_add` the last norm after the addition too (b); `relu_before_add` the last activation before it (c); `relu_preact` each activation before its conv, norms after (d); `pre` norm and activation before each conv (pre-activation, v2, (e)).",
    )
    attention: AttentionSpec | None = Field(
        default=None,
        description="Channel attention in every block; a type name is short for `{type: ...}`; unset means none.",
    )

    @field_validator("type")
    @classmethod
    def _registered(cls, value: str) -> str:
        """The shared model takes any text for ``type``; a name must still be a registered kind."""
        from ..blocks.registry import known

        if not known(value):
            raise PydanticCustomError("literal_error", "{message}", {"message": _unknown_kind(value)})
        return value

    @model_validator(mode="before")
    @classmethod
    def _options_of_its_kind(cls, value: Any) -> Any:
        """Keys of another kind: dropped where they say what this kind implies anyway, else
        refused at the key with this kind's message."""
        from ..blocks.registry import kind_of, kinds
        from .backbone import raise_problems

        if not isinstance(value, dict) or cls is BlockSpec:
            return value
        kind = kind_of(typing.get_args(cls.model_fields["type"].annotation)[0])
        kept: dict[Any, Any] = {}
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        for key, item in value.items():
            if key in cls.model_fields or not isinstance(key, str):
                kept[key] = item
            elif key in kind.fixed and _same_value(item, kind.fixed[key]):
                continue
            elif key in kind.refused:
                problems.append(((key,), kind.refused[key], item))
            else:
                owners = [other.name for other in kinds() if key in other.options.model_fields]
                if not owners:
                    kept[key] = item  # an unknown key: pydantic's error names it
                    continue
                problems.append(((key,), f"{key} applies to {_join_names(owners)} blocks only", item))
        raise_problems(problems)
        return kept

    @model_serializer(mode="wrap")
    def _with_fixed_options(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        # A kind's dump states the options of other kinds its form fixes (a basic block's groups
        # is 1), so every block dumps as it always has (and the emitted files' source hash holds).
        from ..blocks.registry import kind_of

        data = handler(self)
        if isinstance(data, dict) and not info.exclude_unset and not info.exclude_defaults:
            for key, value in kind_of(self.type).fixed.items():
                data.setdefault(key, value)
        return data

    @classmethod
    def option_field(cls, name: str) -> Any:
        """The field ``name`` of this kind, or (on the shared model) of the first kind that has it."""
        from ..blocks.registry import kinds

        if cls is not BlockSpec:
            return cls.model_fields.get(name)
        return next((kind.options.model_fields[name] for kind in kinds() if name in kind.options.model_fields), None)

    @classmethod
    def option_names(cls) -> list[str]:
        """Every option a block may have: this kind's, or (on the shared model) any kind's."""
        from ..blocks.registry import kinds

        if cls is not BlockSpec:
            return list(cls.model_fields)
        return list(dict.fromkeys(name for kind in kinds() for name in kind.options.model_fields))

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """Editors see one object with every kind's options (each says which kind it is for)."""
        from ..blocks.registry import kinds, names

        schema = dict(handler(core_schema))
        target = handler.resolve_ref_schema(schema)
        if cls is BlockSpec:
            properties = dict(target.get("properties", {}))
            for kind in kinds():
                own = kind.options.model_json_schema()["properties"]
                for name, node in own.items():
                    properties.setdefault(name, node)
            properties["type"] = {**properties["type"], "enum": list(names())}
            target["properties"] = {name: properties[name] for name in cls.option_names()}
        return schema

    @property
    def resolved_expansion(self) -> int:
        from ..blocks.registry import kind_of

        return kind_of(self.type).expansion(self)


def _same_value(given: Any, fixed: Any) -> bool:
    return type(given) is type(fixed) and given == fixed


def _join_names(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" and {words[-1]}"


def _block_of_its_kind(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate a block with the options model of the kind its ``type`` names (default basic)."""
    from ..blocks.registry import DEFAULT_KIND, kind_of, known

    if isinstance(value, BlockSpec):
        return value
    if isinstance(value, dict):
        name = value.get("type", DEFAULT_KIND)
        if not known(name):
            from .backbone import raise_problems

            raise_problems([(("type",), _unknown_kind(name), name)])
        return kind_of(name).options.model_validate(value)
    return handler(value)


def _unknown_kind(name: object) -> str:
    """What is wrong with a ``block.type`` no registered kind has: the kinds, and the nearest."""
    from ..blocks.registry import names

    expected = _join_names([repr(item) for item in names()]).replace(" and ", " or ")
    return f"must be one of {expected} (got {name!r}){_did_you_mean(name, names())}"


def _default_block() -> BlockSpec:
    from ..blocks.registry import DEFAULT_KIND, kind_of

    return kind_of(DEFAULT_KIND).options()


def _did_you_mean(name: object, options: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# A block of any registered kind, chosen by its ``type``, dumped with its kind's own options.
AnyBlock = SerializeAsAny[Annotated[BlockSpec, WrapValidator(_block_of_its_kind)]]


class StageSpec(_Strict):
    """One stage: ``blocks`` residual blocks, the first of which applies ``stride``.

    ``block``: this stage's block options, merged over the network's ``block`` (a stage that
    changes ``type`` does not inherit expansion or the old kind's own options: stride_on, groups,
    width_per_group, reduce_first, dropout, radix, avd, avd_first).
    ``out_channels`` and ``inner_channels`` replace the width rule with explicit counts, as pruned
    nets need: the blocks' output channels, and per block the widths of the branch's inner convs
    (``[conv1, conv2]`` for a bottleneck, ``[conv1]`` for a basic block).
    """

    blocks: Count = Field(description="Number of residual blocks in the stage.")
    width: Channels = Field(
        description="The stage's width (torchvision's `planes`): its blocks output `width * expansion` channels."
    )
    stride: Literal[1, 2] = Field(
        default=1, description="Stride of the stage's first block (2 halves the feature map)."
    )
    dilation: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description="Dilation of the stage's 3x3 convs (DeepLab); not together with `backbone.output_stride`.",
    )
    block: AnyBlock | None = Field(
        default=None, description="This stage's block options (the keys of `block`), merged over the network's `block`."
    )
    out_channels: Channels | None = Field(
        default=None, description="Output channels of every block, replacing `width * expansion` (pruned nets)."
    )
    inner_channels: (
        Annotated[list[Annotated[list[Channels], Field(min_length=1, max_length=2)]], Field(max_length=10_000)] | None
    ) = Field(
        default=None,
        description="One entry per block: the widths of its branch's inner convs, `[conv1, conv2]` for a bottleneck, `[conv1]` for a basic block (pruned nets).",
    )
    tied: bool = Field(
        default=False,
        description="Tie the stage's blocks: one block's weights applied `blocks` times (its state_dict holds `layerK.0` only). Each application must keep the shape: stride 1, identity shortcut.",
    )
    step_size: float | None = Field(
        default=None,
        description="A tied stage's step size `dt`: each application computes `h + dt * f(h)` (forward Euler); 1 when unset. Tied stages only.",
    )

    @model_serializer(mode="wrap")
    def _untied_as_before(self, handler: SerializerFunctionWrapHandler) -> Any:
        # An untied stage dumps without the tying keys, so the spec hash of every net that does
        # not tie (and the emitted files' headers) stays what it was before stages could tie.
        data = handler(self)
        if isinstance(data, dict) and not self.tied and self.step_size is None:
            data.pop("tied", None)
            data.pop("step_size", None)
        return data


_SHORTCUT_ALIASES = {"A": "zero_pad", "B": "projection", "C": "projection_all", "D": "avg_down"}


class ShortcutSpec(_Strict):
    """How a block's input reaches the addition when the shape changes.

    ``projection`` (B): 1x1 conv + norm where the shape changes, identity elsewhere (torchvision).
    ``zero_pad`` (A): stride-2 subsampling and zero channels, no parameters (2015 CIFAR nets).
    ``projection_all`` (C): conv + norm on every block.
    ``avg_down`` (D): 2x2 average pool, then 1x1 conv + norm (Bag of Tricks ResNet-D).
    ``none``: no shortcut at all (plain nets).
    ``kernel`` sets the projection conv's size (3 for SENet-154).
    """

    type: Literal["projection", "zero_pad", "projection_all", "avg_down", "none"] = Field(
        default="projection",
        description="`projection` (B), `zero_pad` (A), `projection_all` (C), `avg_down` (D) or `none`; the letters A to D are accepted too.",
    )
    kernel: Literal[1, 3] = Field(default=1, description="Kernel size of the projection conv (3 in SENet-154).")

    # Other names ``type`` accepts (the paper's option letters); the editors' schema lists them too.
    TYPE_ALIASES: ClassVar[dict[str, str]] = _SHORTCUT_ALIASES

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"type": value}
        if isinstance(value, dict) and isinstance(value.get("type"), str):
            value = {**value, "type": _SHORTCUT_ALIASES.get(value["type"], value["type"])}
        return value


# The head's kinds (classifier, segmentation, multitask) live in their own module.
from .heads import HeadSpec  # noqa: E402


class InitSpec(_Strict):
    """Weight initialisation: torchvision's kaiming-normal (fan-out) for convs, ones/zeros for norms."""

    scheme: InitScheme = Field(
        default="kaiming",
        description="`kaiming`: torchvision's kaiming-normal (fan-out) convs, norms at weight 1 and bias 0; `default`: PyTorch's own initialisation of each layer.",
    )
    zero_init_residual: bool = Field(
        default=False,
        description="Zero the last norm of each residual branch (its last conv in pre-activation blocks), so each branch starts at zero.",
    )


class ReferenceSpec(_Strict):
    """Published numbers this spec must reproduce; the tests compare against them."""

    source: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Where the numbers come from, e.g. `torchvision.models.resnet50` or a paper's table."
    )
    params: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Parameter count, exact, as the reference reports it."
    )
    gmacs: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Multiply-accumulates in billions at `input.size`, compared to the digits published."
    )
    paper: Annotated[str, Field(max_length=300)] | None = Field(
        default=None, description="The paper, e.g. `arXiv:1512.03385` (the catalog table links arXiv ids)."
    )

    @field_validator("source", "paper")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        return value if value is None else one_line(value)


class BackboneSpec(_Strict):
    """Using the network as a backbone. Features are numbered 0 = stem (before its pool), 1..N = stages.

    ``features_only``: the network returns a list of feature maps (those at ``out_indices``, all by
    default) instead of logits; the head and any stage after the last feature are left out.
    ``output_stride``: 8 or 16 replaces the stride of the last stages by dilation (DeepLab), so the
    final feature map is that many times smaller than the input; 32 (or unset) changes nothing.
    ``frozen_stages``: K freezes features 0..K (stem through layerK): no gradients, frozen batch
    norms under the same keys and no dropout or drop-path, so the frozen part computes as in eval
    mode whatever module it is wrapped in; unset freezes nothing.
    """

    features_only: bool = Field(
        default=False,
        description="Return the feature maps at `out_indices` instead of logits; the head and any stage after the last feature are left out.",
    )
    out_indices: Annotated[list[Annotated[int, Field(ge=0, le=16)]], Field(min_length=1, max_length=17)] | None = Field(
        default=None,
        description="`features_only` only: the features returned, increasing (0 = stem, 1..N = stages); unset means all.",
    )
    output_stride: Literal[8, 16, 32] | None = Field(
        default=None,
        description="8 or 16 dilates the last stages instead of striding them (DeepLab), so the last feature map is that many times smaller than the input; 32 or unset changes nothing.",
    )
    frozen_stages: Annotated[int, Field(ge=0, le=16)] | None = Field(
        default=None,
        description="K freezes features 0..K (stem through `layerK`): no gradients, frozen batch norms (same keys), no dropout or drop-path; unset freezes nothing.",
    )

    @field_validator("output_stride", mode="before")
    @classmethod
    def _known_stride(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value not in (8, 16, 32):
            raise ValueError(f"must be 8, 16 or 32 (got {value}); the stages past that stride are dilated instead")
        return value

    @field_validator("out_indices")
    @classmethod
    def _increasing(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and value != sorted(set(value)):
            raise ValueError(f"must be increasing, without repeats (got {value})")
        return value


class Spec(_Strict):
    """A whole network."""

    name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        description="A Python identifier naming the network and its generated factory function; a spec file without one takes the file's name."
    )
    description: Annotated[str, Field(max_length=500)] = Field(
        default="",
        description="One paragraph about the network (line breaks fold into spaces); `list` and `info` show it.",
    )
    family: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        default="resnet", description="The catalog group the network is listed under (resnet, resnext, ...)."
    )
    input: InputSpec = Field(default=InputSpec(), description="The input tensor.")
    stem: StemSpec = Field(default=StemSpec(), description="The layers before the first stage.")
    block: AnyBlock = Field(
        default_factory=_default_block,
        json_schema_extra=lambda schema: schema.update(default=_default_block().model_dump(mode="json")),
        description="The residual block of every stage (a stage's own `block` is merged over it).",
    )
    shortcut: ShortcutSpec = Field(
        default=ShortcutSpec(),
        description="How a block's input reaches the addition; a type name (or letter A to D) is short for `{type: ...}`.",
    )
    norm: NormSpec = Field(default=NormSpec(), description="The norm layers; a type name is short for `{type: ...}`.")
    conv: ConvSpec = Field(
        default=ConvSpec(), description="The stem, block and shortcut convs; a type name is short for `{type: ...}`."
    )
    activation: ActivationType = Field(
        default="relu", description="The nonlinearity after the norms (`identity` for none)."
    )
    anti_alias: AntiAliasSpec | None = Field(
        default=None,
        description="Anti-aliased downsampling; a type name is short for `{type: ...}`; unset means plain strided convs and pools.",
    )
    stages: Annotated[list[StageSpec], Field(min_length=1, max_length=16)] = Field(
        description="The stages, in order: the network's body."
    )
    width_factor: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1, description="Multiplies the stem's widths and every stage's width (BiT's x1 to x4)."
    )
    head: HeadSpec | None = Field(
        default=HeadSpec(),
        description="Pooling and classifier, or a segmentation decoder; a type name is short for `{type: ...}`; `null` leaves the head out and returns the last feature map.",
    )
    init: InitSpec = Field(default=InitSpec(), description="Weight initialisation.")
    drop_path: Rate = Field(
        default=0.0,
        description="Stochastic depth: the last block's drop rate, rising linearly from 0 at the first block.",
    )
    backbone: BackboneSpec = Field(
        default=BackboneSpec(), description="Use as a backbone: which feature maps, the output stride, frozen stages."
    )
    reference: ReferenceSpec | None = Field(
        default=None, description="Published numbers the tests hold this spec to; not inherited through `extends`."
    )

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        from .names import name_problem

        problem = name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("stages")
    @classmethod
    def _total_size_is_sane(cls, stages: list[StageSpec]) -> list[StageSpec]:
        total = sum(stage.blocks for stage in stages)
        if total > MAX_TOTAL_BLOCKS:
            raise ValueError(
                f"{total:,} blocks in all; at most {MAX_TOTAL_BLOCKS:,} are supported (ResNet-1202 has 600), lower stages[*].blocks"
            )
        return stages

    @field_validator("backbone")
    @classmethod
    def _backbone_fits(cls, value: BackboneSpec, info: ValidationInfo) -> BackboneSpec:
        from .backbone import backbone_problems, raise_problems

        if "stem" in info.data and "stages" in info.data:
            raise_problems(backbone_problems(value, info.data["stem"], info.data["stages"]))
        return value

    @field_validator("family")
    @classmethod
    def _family_one_line(cls, value: str) -> str:
        return one_line(value)

    @field_validator("description")
    @classmethod
    def _description_one_paragraph(cls, value: str) -> str:
        return " ".join(value.split())

    @model_validator(mode="before")
    @classmethod
    def _stage_blocks_extend_block(cls, data: Any) -> Any:
        from .stage_options import merge_stage_blocks

        return merge_stage_blocks(data)

    @model_validator(mode="after")
    def _stage_options_fit(self) -> Spec:
        from .backbone import raise_problems
        from .limits import width_problems
        from .stage_options import anti_alias_problems, stage_problems, tied_problems

        raise_problems(
            stage_problems(self)
            + tied_problems(self)
            + (anti_alias_problems(self) if self.anti_alias else [])
            + width_problems(self)
        )
        return self

    def block_for(self, stage: int) -> BlockSpec:
        """The block options of ``stages[stage]``: its own ``block`` (already merged) or the network's."""
        return self.stages[stage].block or self.block

    def stage_out_channels(self, stage: int) -> int:
        """Output channels of every block of ``stages[stage]``."""
        own = self.stages[stage]
        return own.out_channels or own.width * self.block_for(stage).resolved_expansion

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Spec:
        # Each problem is raised at the key that has to change, so the message points there.
        from .backbone import raise_problems

        for index, stage in enumerate(self.stages):
            out = self.stage_out_channels(index) * self.width_factor
            if out > MAX_CHANNELS:
                widened = self.stage_out_channels(index) <= MAX_CHANNELS
                raise_problems(
                    [
                        (
                            ("width_factor",) if widened else ("stages", index, "width"),
                            (f"width_factor {self.width_factor} gives stages[{index}] " if widened else "gives ")
                            + f"{out:,} output channels; at most {MAX_CHANNELS:,} are supported",
                            stage.width,
                        )
                    ]
                )
        if self.norm.type in ("group", "evonorm_s0"):
            widths = self._norm_widths()
            for index, channels in widths:
                if channels % self.norm.groups:
                    fits = math.gcd(*(width for _, width in widths))
                    example = next(d for d in (32, 16, 8, 4, 2, 1) if fits % d == 0)
                    raise_problems(
                        [
                            (
                                ("norm", "groups"),
                                f"{self.norm.type} norm needs every normalised channel count divisible by groups {self.norm.groups}, but stages[{index}] has {channels}; use a divisor of {fits} such as {example}",
                                self.norm.groups,
                            )
                        ]
                    )
        if self.shortcut.type == "zero_pad":
            channels = self.stem.width
            for index in range(len(self.stages)):
                out = self.stage_out_channels(index)
                if out < channels:
                    key = "out_channels" if self.stages[index].out_channels is not None else "width"
                    raise_problems(
                        [
                            (
                                ("stages", index, key),
                                f"shortcut zero_pad cannot shrink channels ({channels} -> {out}); keep at least {channels} output channels or use shortcut: projection",
                                out,
                            )
                        ]
                    )
                channels = out
        return self

    @model_validator(mode="after")
    def _head_fits(self) -> Spec:
        from .backbone import raise_problems
        from .heads import head_problems

        raise_problems(head_problems(self))
        return self

    @model_validator(mode="after")
    def _stem_norm_groups(self) -> Spec:
        """Group-wise norms must divide the stem's normalised widths too (deep and post-activation stems)."""
        from .backbone import raise_problems

        if self.norm.type not in ("group", "evonorm_s0"):
            return self
        stem, factor = self.stem, self.width_factor
        widths = []
        if stem.layers is not None:
            channels = self.input.channels
            for entry in stem.layers:
                if entry.type == "conv" and entry.channels is not None:
                    channels = entry.channels * factor
                elif entry.type == "norm":
                    widths.append(channels)
        elif stem.type != "conv":
            deep = stem.deep_width * factor
            widths += [3 * (deep // 4) if stem.type == "deep_tiered" else deep, deep]
        if stem.layers is None and (self.block.order != "pre" or stem.pool == "conv"):
            widths.append(stem.width * factor)
        for channels in widths:
            if channels % self.norm.groups:
                raise_problems(
                    [
                        (
                            ("norm", "groups"),
                            f"{self.norm.type} norm needs every normalised channel count divisible by groups {self.norm.groups}, but the stem has {channels}; use a divisor of {math.gcd(*widths)} or other stem widths",
                            self.norm.groups,
                        )
                    ]
                )
        return self

    def _norm_widths(self) -> list[tuple[int, int]]:
        """(stage index, channels) of every normalised width inside the stages."""
        from ..blocks.registry import kind_of

        out: list[tuple[int, int]] = []
        for index, stage in enumerate(self.stages):
            block = self.block_for(index)
            widths = [self.stage_out_channels(index)]
            if stage.inner_channels is not None:
                widths.extend(width for inner in stage.inner_channels for width in inner)
            else:
                widths.extend(kind_of(block.type).inner_widths(block, stage.width))
            out.extend((index, width) for width in widths)
        return out
