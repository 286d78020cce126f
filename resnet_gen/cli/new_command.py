"""new: scaffold a spec that extends a parent, with the usually changed fields as commented examples."""

from __future__ import annotations

from pathlib import Path

import click

from .. import catalog
from ..errors import SpecError
from ..files import write_text_atomic
from ..layout_dispatch import load_with_report
from ..spec.load import is_unet

SCHEMA_COMMENT = "# yaml-language-server: $schema=../resnet-gen.schema.json"

# Commented so the new spec starts equal to its parent; uncomment a line to change that field.
_EXAMPLES = """\
# Uncomment and edit; every field not given here is inherited from {parent}.
# 'resnet-gen info {path}' shows the per-stage numbers, 'resnet-gen schema' lists every field.
# block: {{attention: se}}             # squeeze-and-excitation in every block (or eca)
# block: {{groups: 32, width_per_group: 4}}  # ResNeXt-style grouped 3x3
# stem: {{type: deep, width: 64}}      # ResNet-C deep stem (three 3x3 convs)
# shortcut: {{type: avg_down}}         # ResNet-D shortcut: avg-pool then 1x1 conv
# width_factor: 2                    # multiply stem and stage widths
# stages:                            # a stage list replaces the parent's whole list
#   - {{blocks: 3, width: 64}}
#   - {{blocks: 4, width: 128, stride: 2}}
#   - {{blocks: 6, width: 256, stride: 2}}
#   - {{blocks: 3, width: 512, stride: 2}}
# head: {{num_classes: 10, dropout: 0.2}}
# drop_path: 0.1                     # stochastic depth
"""
# The same for a diffusion U-Net parent (layout: unet).
_UNET_EXAMPLES = """\
# Uncomment and edit; every field not given here is inherited from {parent}.
# 'resnet-gen info {path}' shows the per-stage numbers, 'resnet-gen schema' lists every field.
# input: {{channels: 1, size: 28}}     # the sample; its sides must halve at every stage
# unet:
#   block_out_channels: [64, 128, 128]  # stage widths (a list replaces the parent's whole list)
#   layers_per_block: 1                 # ResBlocks per down stage (one more per up stage)
#   down_blocks: null                   # drop the parent's stage kinds to place attention by resolution
#   up_blocks: null
#   attention_resolutions: [14]
#   attention_head_dim: 32              # unset: one head over all channels
#   time_injection: scale_shift         # or add
#   dropout: 0.1
#   norm: {{groups: 32, eps: 1e-6}}
"""


def _check_name(name: str, param_hint: str) -> None:
    from ..spec.names import name_problem

    problem = name_problem(name)
    if problem is not None:
        raise click.BadParameter(problem, param_hint=param_hint)


def scaffold_text(name: str, parent: str, path: str, *, unet: bool = False) -> str:
    """The new spec's text: schema comment, extends, description, commented examples."""
    return "\n".join(
        [
            SCHEMA_COMMENT,
            f"extends: {parent}",
            f'description: "A variant of {parent}."',
            (_UNET_EXAMPLES if unet else _EXAMPLES).format(parent=parent, path=path),
        ]
    )


@click.command("new")
@click.argument("name")
@click.option("--from", "parent", required=True, help="Parent spec (catalog name) to extend.")
@click.option(
    "--dir",
    "folder",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write NAME.yaml into  [default: specs/, or my_specs/ in a checkout of resnet-gen,"
    " whose specs/ is the catalog]",
)
def new(name: str, parent: str, folder: Path | None) -> None:
    """Write FOLDER/NAME.yaml extending PARENT; refuses to overwrite.

    Your specs live in your folder, never in the catalog: validate, build, diagram and gallery
    with no spec arguments act on that folder.
    """
    if folder is None:
        folder = catalog.user_specs_dir()
    elif folder.resolve() == catalog.specs_dir().resolve():
        raise click.BadParameter(
            f"{folder} is the shipped catalog; keep your specs in your own folder (the default)", param_hint="--dir"
        )
    _check_name(name, "NAME")
    if len(parent) > 80 or not (parent.isascii() and parent.isidentifier()):
        raise click.BadParameter(
            f"{parent[:80]!r} is not a catalog name; 'resnet-gen list' shows them", param_hint="'--from'"
        )
    load_with_report(parent)  # a missing or broken parent fails here, before anything is written
    target = folder / f"{name}.yaml"
    if target.exists():
        raise click.UsageError(f"{target} already exists; pick another name or delete it first")
    folder.mkdir(parents=True, exist_ok=True)
    text = scaffold_text(name, parent, target.as_posix(), unet=is_unet(parent))
    write_text_atomic(target, text)
    try:
        load_with_report(target)
    except SpecError:
        target.unlink()
        raise
    shown = target.as_posix()
    click.echo(f"wrote {shown} (extends {parent}); edit it, then: resnet-gen info {shown}")
