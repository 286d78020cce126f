"""The int8 deployment form (``resnet-gen build --target int8``): the inference form's source with
``quantize_int8`` (post-training static quantisation through PyTorch's FX graph mode and the x86
QConfig mapping) and a factory that calibrates on the caller's images (templates/int8/)."""

from __future__ import annotations

from ..plan.inference import TARGETS

INT8 = "int8"
# Every target a source file can be written for: the plan's, and int8 on top of the inference plan.
EMIT_TARGETS = (*TARGETS, INT8)
# The names templates/int8/ defines in the file.
INT8_NAMES = {"freeze_int8", "quantize_int8", "copy", "Iterable"}

MODULE_NOTE = (
    "The int8 form: the inference form (batch norms folded into the convs, eval mode,"
    " channels-last) with ``quantize_int8``, post-training static quantisation through PyTorch's FX"
    " graph mode for x86 CPUs: int8 weights per output channel, uint8 activations calibrated on"
    " your images."
)


def usage(name: str) -> str:
    return (
        f"It needs only torch: ``from {name} import {name}; model = {name}(calibration=batches,"
        " checkpoint=state_dict)`` with a few batches of the images it will serve and the state_dict of"
        " the training form (``resnet-gen build`` without ``--target``); ``freeze_int8(model)`` compiles"
        " it with TorchScript, faster still on small nets."
    )


def factory_doc(name: str, folded: bool) -> str:
    how = "folded by ``fold_batch_norms``" if folded else "loaded as they are"
    return (
        f"A new {name} in int8: the float network with ``checkpoint`` (a state_dict of the training"
        f" form; its weights {how}), calibrated on ``calibration`` (batches of images) and converted"
        " by ``quantize_int8``."
    )
