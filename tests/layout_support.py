"""What catalog-wide tests ask of a spec whatever its layout (classifier or U-Net): its name, its
emitted source and its drawing, each from the back end of its own layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

import resnet_gen as rg
from resnet_gen import catalog
from resnet_gen.emit.source import emit_source
from resnet_gen.unet import is_unet, load_unet_and_plan

if TYPE_CHECKING:
    import graphviz


def spec_name(name: str) -> str:
    return load_unet_and_plan(name)[0].name if is_unet(name) else rg.load_spec(name).name


def fresh_source(name: str, target: str = "training") -> tuple[str, str]:
    """(the spec's name, the file ``resnet-gen build --catalog`` writes for it now)."""
    label = f"specs/{catalog.catalog_path(name).name}"
    if is_unet(name):
        from resnet_gen.unet.emit import emit_unet

        unet = load_unet_and_plan(name)[0]
        return unet.name, emit_unet(unet, label, target=target)
    spec = rg.load_spec(name)
    return spec.name, emit_source(rg.lower(spec), label, target=target)


def fresh_diagram(name: str) -> graphviz.Digraph:
    if is_unet(name):
        from resnet_gen.unet.diagram import unet_diagram

        return unet_diagram(load_unet_and_plan(name)[1])
    return rg.diagram(rg.load_spec(name))
