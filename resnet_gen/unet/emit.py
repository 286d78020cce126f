"""Standalone source of a U-Net: the header, the runtime's helper modules it uses (copied by
:mod:`resnet_gen.emit.helpers` from :mod:`resnet_gen.runtime`, their one source), and a factory
that spells out the network's construction, specialised to the spec. Needs no torch; the file
needs only torch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .. import __version__
from ..emit.blocks import resblock_class
from ..emit.formatting import ruff_format
from ..emit.helpers import helper_source
from ..emit.source import MARKER, import_lines
from ..emit.templates import collecting, render
from ..emit.values import EmitError, comment_text, paragraphs, py_literal
from ..spec.digest import spec_hash
from .construction import RESBLOCK_ARGS, Call, class_names, construction
from .plan import UNetPlan, lower_unet
from .spec import UNetSpec

# The classes a U-Net file may use, in the order it defines them (each after what it uses): the
# runtime's, copied, except the ResBlock, which is written from its block kind's plans (:func:`resblock_source`).
HELPERS = (
    "SinusoidalTimesteps",
    "TimestepMLP",
    "ResBlock",
    "SelfAttention",
    "Downsample",
    "Upsample",
    "DownStage",
    "MidStage",
    "UpStage",
    "UNet",
)
TARGETS = ("training", "inference")


def expression(value: Any) -> str:
    """A construction as Python source."""
    if isinstance(value, Call):
        args = [expression(arg) for arg in value.args]
        args += [f"{key}={expression(arg)}" for key, arg in value.kwargs.items()]
        return f"{value.name}({', '.join(args)})"
    if isinstance(value, list):
        return "[" + ", ".join(expression(item) for item in value) + ",]"
    return py_literal(value)


def resblock_source(plan: UNetPlan) -> tuple[str, set[str]]:
    """The ResBlock class of ``plan``, written as every block kind's class is (the block template,
    from the ``diffusion`` kind's plans of all its ResBlocks), and the imports it needs."""
    with collecting() as needs:
        cls = resblock_class(plan.resnets, "ResBlock")
        args = tuple(arg.name for arg in cls.args)
        if args != RESBLOCK_ARGS:
            raise EmitError(f"the U-Net's ResBlock class takes {args}, not {RESBLOCK_ARGS}")
        text = render("block.py.j2", cls=cls, model=SimpleNamespace(inference=False))
    if needs.helpers:
        raise EmitError(f"the U-Net's ResBlock uses helper classes {sorted(needs.helpers)}; none is copied")
    return text, needs.imports


def numbers(plan: UNetPlan) -> str:
    height, width = plan.size
    return (
        f"{plan.params:,} parameters and {plan.macs / 1e9:.3f} GMACs (multiply-accumulates, attention"
        f" included) for one {plan.in_channels}x{height}x{width} sample"
    )


def emit_unet(
    spec: UNetSpec,
    source: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    formatted: bool = True,
    target: str = "training",
) -> str:
    """The standalone PyTorch file of a U-Net spec; ``source`` names the spec file in the header.
    ``target="inference"``: the same network, built in eval mode without gradients, whose factory
    loads a training checkpoint (a U-Net has no batch norm to fold)."""
    if target not in TARGETS:
        raise EmitError(
            f"--target {target} is not written for U-Nets (int8 quantisation is for the classifiers); use"
            f" {' or '.join(TARGETS)}"
        )
    inference = target == "inference"
    plan = lower_unet(spec)
    built = construction(plan)
    used = class_names(built)
    copied = {name: helper_source(name) for name in HELPERS if name in used and name != "ResBlock"}
    resblock, wanted = resblock_source(plan)
    wanted |= {name for helper in copied.values() for name in helper.imports}
    texts = [copied[name].text if name in copied else resblock for name in HELPERS if name in used]
    if inference:
        wanted.add("Mapping")
    imports = import_lines(wanted)
    origin = f"the spec file {source}" if source is not None else "a spec built in Python"
    title = f"{spec.name}: {spec.description}" if spec.description else spec.name
    call = f"{spec.name}(checkpoint=state_dict)" if inference else f"{spec.name}()"
    usage = (
        f"Written by resnet-gen from {origin} (family {spec.family}){', for inference' if inference else ''}."
        f" It needs only torch: ``from {spec.name} import {spec.name}; model = {call}; noise = model(x, t)``."
        " Its state_dict keys are those of diffusers' ``UNet2DModel`` of the same configuration."
    )
    if inference:
        usage += " The inference form: built in eval mode, without gradients."
    header = render(
        "header.py.j2",
        marker=MARKER,
        command="resnet-gen build" + (" --target inference" if inference else ""),
        version=__version__,
        spec_name=spec.name,
        source=comment_text(py_literal(str(source))) if source is not None else "no file (built in Python)",
        overrides=[comment_text(py_literal(item)) for item in overrides],
        spec_hash=spec_hash(spec),
        module_doc=paragraphs(title, f"{numbers(plan)}. It returns a tensor shaped like the sample.", usage),
        imports=imports,
    )
    text = render(
        "unet/file.py.j2",
        header=header,
        name=spec.name,
        helpers=texts,
        factory_doc=paragraphs(
            f"A new {spec.name} for inference; with ``checkpoint`` (a state_dict of the training form or of"
            " diffusers' UNet2DModel), its weights."
            if inference
            else f"A new {spec.name} diffusion U-Net (PyTorch's default initialisation)."
        ),
        construction=expression(built),
        inference=inference,
    )
    return ruff_format(text) if formatted else text


def unet_source(source: str, items: list[str], overrides: Sequence[str], target: str) -> tuple[UNetSpec, str]:
    """``resnet-gen build`` of a U-Net spec: the spec and its file (training or inference form)."""
    from ..catalog import spec_label
    from .load import load_unet

    spec = load_unet(source, items)
    return spec, emit_unet(spec, spec_label(source), overrides=overrides, target=target)
