"""``load_weights``: a local checkpoint or state_dict into a built network, with a report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..plan import Plan
from ..plan.layers import Conv
from .adapt import adapt_input_conv
from .checkpoint import read_checkpoint, tensors_of
from .layouts import choose_layout, mapped
from .report import WeightsError, WeightsReport

_SHOWN = 5  # mismatches listed in an error before "and N more"


def _first_conv_key(model: nn.Module, plan: Plan | None) -> str | None:
    if plan is not None:
        convs = [layer for layer in plan.stem if isinstance(layer, Conv)]
        return f"{convs[0].path}.weight" if convs else None
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return f"{name}.weight"
    return None


def _classifier_keys(model: nn.Module, plan: Plan | None) -> set[str]:
    if plan is not None:
        fc = plan.head.fc if plan.head is not None else None
        return {f"{fc.path}.weight", f"{fc.path}.bias"} if fc is not None else set()
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return {f"{linears[-1]}.weight", f"{linears[-1]}.bias"} if linears else set()


def _shape(tensor: torch.Tensor) -> str:
    return "[" + ", ".join(str(size) for size in tensor.shape) + "]"


def load_weights(
    model: nn.Module,
    checkpoint: str | Path | Mapping[str, torch.Tensor],
    adapt: bool = True,
    *,
    strict: bool = False,
) -> WeightsReport:
    """Load ``checkpoint`` (a ``.pth``/``.pt``/``.safetensors`` file or a state_dict) into ``model``.

    Keys in torchvision's or timm's ResNet layout load as they are; timm's ResNetV2 layout is
    mapped through the model's plan. With ``adapt`` (the default), a first conv trained on another
    number of input channels is adapted (summed for 1 channel, repeated and scaled for N, as
    timm's ``adapt_input_conv``) and a classifier for another number of classes is skipped (the
    model keeps its own). Any other shape mismatch is an error: the checkpoint is for another
    architecture. With ``strict``, missing or unused keys are errors too. Nothing is downloaded;
    files are read with ``torch.load(weights_only=True)``.
    """
    if isinstance(checkpoint, Mapping):
        source, state = "state_dict", tensors_of(checkpoint, "state_dict")
    else:
        source = str(checkpoint)
        state = read_checkpoint(Path(checkpoint))
    plan = getattr(model, "plan", None)
    plan = plan if isinstance(plan, Plan) else None
    own = model.state_dict()
    layout, mapping = choose_layout(list(state), list(own), plan)
    targets = mapped(state, mapping)
    first_conv = _first_conv_key(model, plan)
    classifier = _classifier_keys(model, plan)

    values: dict[str, torch.Tensor] = {}
    loaded: list[str] = []
    adapted: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    mismatched: list[str] = []
    for key, tensor in state.items():
        target = targets[key]
        if target is None or target not in own:
            skipped.append((key, "not in this model"))
            continue
        if target in values:
            skipped.append((key, f"{target} already filled from another key"))
            continue
        expected = own[target]
        if target in classifier and tensor.dim() == 4 and expected.dim() == 2 and tensor.shape[2:] == (1, 1):
            tensor = tensor.flatten(1)  # a 1x1-conv classifier (timm's ResNetV2 head) as a Linear
        if tensor.shape == expected.shape:
            values[target] = tensor
            loaded.append(target)
        elif (
            adapt
            and target == first_conv
            and tensor.dim() == 4
            and tensor.shape[0] == expected.shape[0]
            and tensor.shape[2:] == expected.shape[2:]
        ):
            values[target], how = adapt_input_conv(tensor, expected.shape[1])
            adapted.append((target, how))
        elif adapt and target in classifier:
            skipped.append(
                (
                    key,
                    f"classifier {_shape(tensor)} does not fit the model's {_shape(expected)}; the model keeps its own",
                )
            )
        else:
            mismatched.append(f"{target}: checkpoint {_shape(tensor)}, model {_shape(expected)}")
    if mismatched:
        more = f"; and {len(mismatched) - _SHOWN} more" if len(mismatched) > _SHOWN else ""
        why = "is it for another architecture?" if adapt else "and adapting the first conv and classifier is off:"
        raise WeightsError(f"{source}: shapes differ from the model's; {why} " + "; ".join(mismatched[:_SHOWN]) + more)
    if not values:
        raise WeightsError(f"{source}: no tensor fits this model; is the checkpoint for another architecture?")
    missing = [key for key in own if key not in values]
    if strict and (missing or skipped):
        problems = [f"missing {key}" for key in missing] + [f"unused {key} ({why})" for key, why in skipped]
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise WeightsError(f"{source}: strict loading failed: " + "; ".join(problems[:_SHOWN]) + more)
    model.load_state_dict(values, strict=False)
    return WeightsReport(source, layout, tuple(loaded), tuple(adapted), tuple(skipped), tuple(missing))
