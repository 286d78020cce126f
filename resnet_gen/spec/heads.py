"""The ``head`` section: a classifier (the default), a segmentation decoder, or both at once.

``type: segmentation`` replaces the classifier by a decoder that returns a mask of
``num_classes`` channels at the input's resolution; ``type: multitask`` keeps the classifier and
adds the decoder, returning both (the third seed's medical example). The decoder is one of:

* ``transposed``: the seed's decoder on the last feature map: for each width of ``channels`` a
  4x4 stride-2 transposed conv (padding 1), batch norm and ReLU, then a 1x1 conv to the classes.
* ``fpn``: a feature pyramid (torchvision's ``FeaturePyramidNetwork``: a 1x1 lateral conv per
  feature, top-down nearest upsample-and-add, a 3x3 output conv per level) over ``features``;
  the levels are upsampled to the finest, summed, and a 1x1 conv gives the classes.
* ``unet``: U-Net's expanding path over ``features``: from the deepest, a 2x2 stride-2 transposed
  conv, concatenation with the next finer feature, two 3x3 conv + batch norm + ReLU; then a 1x1
  conv to the classes.

Every decoder ends by resizing its mask bilinearly to the input's size, so an odd input size
gets a mask of exactly that size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from ..choices import DecoderType, HeadPoolType
from .model import Channels, Rate, _Strict

if TYPE_CHECKING:
    from .backbone import Problem
    from .model import Spec

HeadType = Literal["classifier", "segmentation", "multitask"]
# The seed's transposed-conv decoder: 512 -> 256 -> 128, then the 1x1 to the mask.
TRANSPOSED_CHANNELS = (256, 128)
FPN_WIDTH = 256  # torchvision's and Detectron2's FPN width
DECODER_KEYS = ("type", "decoder", "mask_classes")


class DecoderSpec(_Strict):
    """The segmentation decoder of a ``segmentation`` or ``multitask`` head."""

    type: DecoderType = Field(
        default="transposed",
        description="`transposed`: the seed's stride-2 transposed convs on the last feature map; `fpn`: a feature pyramid over `features`; `unet`: U-Net's up-conv, concatenate, two 3x3 convs, over `features`.",
    )
    features: Annotated[list[Annotated[int, Field(ge=0, le=16)]], Field(min_length=2, max_length=17)] | None = Field(
        default=None,
        description="`fpn` and `unet` only: the feature maps the decoder reads, increasing (0 = stem before its pool, 1..N = stages); unset means every stage.",
    )
    channels: Annotated[list[Channels], Field(min_length=1, max_length=16)] | None = Field(
        default=None,
        description="`transposed`: the width of each transposed conv (unset: the seed's 256, 128); `unet`: the width of each decoder level, shallowest first, one per feature but the deepest (unset: the feature's own channels).",
    )
    width: Channels | None = Field(
        default=None, description="`fpn` only: the pyramid's width (unset: 256, as torchvision's FPN)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _options_fit_type(self) -> DecoderSpec:
        if self.type == "transposed" and self.features is not None:
            raise ValueError(
                "features applies to fpn and unet decoders; a transposed decoder reads the last feature map"
            )
        if self.type != "fpn" and self.width is not None:
            raise ValueError(
                "width applies to fpn decoders only; transposed and unet decoders take channels, one per level"
            )
        if self.type == "fpn" and self.channels is not None:
            raise ValueError("channels applies to transposed and unet decoders; an fpn decoder takes one width")
        return self

    @property
    def resolved_width(self) -> int:
        return FPN_WIDTH if self.width is None else self.width


class HeadSpec(_Strict):
    """What the network ends in: global pooling, dropout and the classifier (``type: classifier``),
    a segmentation decoder (``segmentation``), or both (``multitask``). ``num_classes: 0`` with a
    classifier returns pooled features."""

    type: HeadType = Field(
        default="classifier",
        description="`classifier`: pooling and a linear layer; `segmentation`: a decoder returning a mask of `num_classes` channels at the input's size; `multitask`: both, as `(logits, mask)`.",
    )
    pool: HeadPoolType = Field(default="avg", description="Global pooling before the classifier: average or max.")
    dropout: Rate = Field(default=0.0, description="Dropout rate before the classifier.")
    num_classes: Annotated[int, Field(ge=0, le=1_000_000)] = Field(
        default=1000,
        description="Outputs of the final linear layer (0 leaves it out and returns the pooled features); with `type: segmentation`, the mask's channels.",
    )
    decoder: DecoderSpec | None = Field(
        default=None,
        description="`segmentation` and `multitask` only: the decoder; a type name is short for `{type: ...}`; unset means `transposed`.",
    )
    mask_classes: Annotated[int, Field(ge=1, le=65_536)] | None = Field(
        default=None,
        description="`multitask` only: the mask's channels (unset: 1, a binary mask as the seed's medical example).",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @model_serializer(mode="wrap")
    def _classifier_dumps_as_before(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A classifier head leaves the decoder keys out of dumps, so every classifier spec's
        # resolved form (and the source hash the emitted files carry) is what it was.
        data = handler(self)
        if self.type == "classifier" and isinstance(data, dict):
            for key in DECODER_KEYS:
                data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _options_fit_type(self) -> HeadSpec:
        from .backbone import raise_problems

        problems: list[Problem] = []
        if self.type == "classifier":
            for key in ("decoder", "mask_classes"):
                if getattr(self, key) is not None:
                    problems.append(
                        ((key,), "applies to segmentation and multitask heads; add type: segmentation", None)
                    )
        elif self.type == "segmentation":
            if self.num_classes == 0:
                problems.append(
                    (("num_classes",), "a segmentation head needs at least 1 class (the mask's channels)", 0)
                )
            # Defaults pass: a segmentation spec may extend a classifier that spells them out.
            if self.pool != "avg" or self.dropout:
                key = "pool" if self.pool != "avg" else "dropout"
                problems.append(
                    ((key,), "applies to classifier and multitask heads; a segmentation head has no pooling", None)
                )
            if self.mask_classes is not None:
                problems.append(
                    (
                        ("mask_classes",),
                        "applies to multitask heads; a segmentation head's mask has num_classes channels",
                        None,
                    )
                )
        elif self.num_classes == 0:
            problems.append(
                (
                    ("num_classes",),
                    "a multitask head needs at least 1 class; use type: segmentation for a mask alone",
                    0,
                )
            )
        raise_problems(problems)
        return self

    @property
    def has_decoder(self) -> bool:
        return self.type != "classifier"

    @property
    def resolved_decoder(self) -> DecoderSpec:
        return self.decoder if self.decoder is not None else DecoderSpec()

    @property
    def mask_channels(self) -> int:
        if self.type == "segmentation":
            return self.num_classes
        return 1 if self.mask_classes is None else self.mask_classes


def decoder_features(spec: Spec) -> list[int]:
    """The feature indices the decoder reads (the last stage's alone for ``transposed``)."""
    assert spec.head is not None
    decoder = spec.head.resolved_decoder
    count = len(spec.stages)
    if decoder.type == "transposed":
        return [count]
    return list(decoder.features) if decoder.features is not None else list(range(1, count + 1))


def head_problems(spec: Spec) -> list[Problem]:
    """Each way the decoder does not fit the rest of the spec: (key path, message, value)."""
    head = spec.head
    if head is None or not head.has_decoder:
        return []
    problems: list[Problem] = []
    decoder = head.resolved_decoder
    where = ("head", "decoder")
    if spec.backbone.features_only:
        problems.append(
            (
                ("backbone", "features_only"),
                f"a {head.type} head needs the whole network; leave features_only out",
                True,
            )
        )
    count = len(spec.stages)
    features = decoder_features(spec)
    if decoder.features is not None:
        if features != sorted(set(features)):
            return [((*where, "features"), f"must be increasing, without repeats (got {features})", features)]
        for position, index in enumerate(features):
            if index > count:
                problems.append(
                    (
                        (*where, "features", position),
                        f"feature {index} does not exist; 0 is the stem and 1..{count} the stages",
                        index,
                    )
                )
    if problems:
        return problems
    if decoder.channels is not None and decoder.type == "unet" and len(decoder.channels) != len(features) - 1:
        problems.append(
            (
                (*where, "channels"),
                f"a unet decoder over {len(features)} features has {len(features) - 1} levels; give {len(features) - 1} widths (got {len(decoder.channels)})",
                decoder.channels,
            )
        )
    if decoder.type == "unet":
        reductions = _reductions(spec)
        for position in range(1, len(features)):
            fine, coarse = features[position - 1], features[position]
            if reductions[coarse] != 2 * reductions[fine]:
                problems.append(
                    (
                        (*where, "features", position),
                        f"feature {coarse} is at 1/{reductions[coarse]} of the input and feature {fine} at 1/{reductions[fine]};"
                        " a unet decoder's 2x up-convs need each feature twice as coarse as the one before it: pick features that halve, or use decoder: fpn",
                        coarse,
                    )
                )
    return problems


def _reductions(spec: Spec) -> list[int]:
    """How many times smaller than the input each feature is (0 = stem before its pool)."""
    from .backbone import stem_reduction

    stem_conv = spec.stem.stride
    out: list[int] = [stem_conv]
    reduction = stem_reduction(spec.stem)
    target = spec.backbone.output_stride
    for stage in spec.stages:
        if target is None or reduction < target:
            reduction *= stage.stride
        out.append(reduction)
    return out
