"""The source back end's part of a segmentation or multitask head: the decoder's constructor,
the factory arguments for its classes, and what the forward feeds it (templates/decoder.py.j2)."""

from __future__ import annotations

from dataclasses import dataclass

from ..plan import Plan
from ..plan.heads import DecoderPlan
from .templates import use
from .values import EmitError, check_identifier, py_literal

# Each decoder kind's helper class (resnet_gen.runtime.decoders).
DECODER_CLASSES = {"transposed": "TransposedDecoder", "fpn": "FPNDecoder", "unet": "UNetDecoder"}


@dataclass(frozen=True)
class Decoder:
    constructor: str  # the decoder's constructor call, its classes the model's argument
    classes_param: str  # the model argument giving the mask's channels
    classes_default: str
    multitask: bool
    taps: tuple[str, ...]  # top-level modules whose outputs the decoder reads (the last stage's after the final norm)
    output_class: str | None  # the multitask output's named tuple


def decoder(plan: Plan) -> Decoder | None:
    if plan.decoder is None:
        return None
    found: DecoderPlan = plan.decoder
    if found.type not in DECODER_CLASSES:
        raise EmitError(f"decoder {found.type!r} has no source template")
    name = use(DECODER_CLASSES[found.type])
    param = "mask_classes" if found.multitask else "num_classes"
    channels = list(found.in_channels)
    first = py_literal(channels[-1] if found.type == "transposed" else channels)
    second = {
        "transposed": f"channels={py_literal(list(found.channels))}",
        "fpn": f"width={py_literal(found.channels[0])}",
        "unet": f"channels={py_literal(list(found.channels))}",
    }[found.type]
    return Decoder(
        constructor=f"{name}({first}, {second}, num_classes={param})",
        classes_param=param,
        classes_default=py_literal(found.num_classes),
        multitask=found.multitask,
        taps=tuple(check_identifier(tap.module, "feature module") for tap in found.taps),
        output_class=use("MultiTaskOutput") if found.multitask else None,
    )
