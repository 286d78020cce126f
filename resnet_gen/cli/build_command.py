"""``resnet-gen build``: write standalone PyTorch source for specs. Never imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..emit.int8 import EMIT_TARGETS
from ..errors import SpecError

# Below out/ (or generated/ with --catalog): the inference and int8 forms go one folder deeper.
OUTPUT_SUBFOLDER = {"training": "", "inference": "inference", "int8": "int8"}


def command() -> click.Command:
    """The ``build`` command. Built when the command is first used, so that listing the
    other commands loads none of its back end."""
    from .app import set_option
    from .sources import catalog_option, verbose_option

    decorators = [
        click.command("build"),
        click.argument("specs", nargs=-1),
        click.option(
            "-o",
            "--output",
            "out_dir",
            type=click.Path(path_type=Path),
            default=None,
            help="Folder for the files (named <spec name>.py)  [default: out/, or generated/ with --catalog;"
            " inference/ or int8/ below it for those targets]",
        ),
        click.option(
            "--target",
            type=click.Choice(EMIT_TARGETS),
            default="training",
            show_default=True,
            help="training: the network as the spec says; inference: batch norms folded into the convs,"
            " channels-last, no gradients or training-only parts, with fold_batch_norms to load a training checkpoint;"
            " int8: the inference form with quantize_int8 (post-training static quantisation, calibrated on your images).",
        ),
        click.option("--stdout", "to_stdout", is_flag=True, help="Write the one spec's source to stdout instead."),
        click.option("--force", is_flag=True, help="Overwrite files that resnet-gen did not write."),
        set_option,
        catalog_option,
        verbose_option,
    ]
    func: Any = build
    for decorate in reversed(decorators):
        func = decorate(func)
    assert isinstance(func, click.Command)
    return func


def build(
    specs: tuple[str, ...],
    out_dir: Path | None,
    target: str,
    to_stdout: bool,
    force: bool,
    overrides: tuple[str, ...],
    use_catalog: bool,
    verbose: bool,
) -> None:
    """Write PyTorch source (your specs or --catalog).

    Specs are files or catalog names; with none, the specs in your folder (./specs, or ./my_specs
    in a checkout of resnet-gen), or with --catalog every shipped spec.

    Each spec becomes <output>/<name>.py, which needs only torch. A file without resnet-gen's
    do-not-edit marker is never overwritten unless --force is given. With --target inference the
    file is for deployment (see --target); its factory takes the training form's state_dict.
    """
    from ..catalog import spec_label
    from ..compile import compile_spec
    from ..emit.source import emit_source
    from ..emit.values import EmitError
    from ..spec.load import is_unet
    from .output import FileTally, prepare_outputs, write_per_spec
    from .sources import with_identity

    sources, folder = prepare_outputs(
        specs, use_catalog, out_dir, to_stdout=to_stdout, verb="writes", sub=OUTPUT_SUBFOLDER[target]
    )

    def make(source: str) -> tuple[str, Path, bytes]:
        try:
            if is_unet(source):
                from ..unet.emit import unet_source

                unet, text = unet_source(source, with_identity(source, overrides), overrides, target)
                name = unet.name
            else:
                spec, plan = compile_spec(source, with_identity(source, overrides))
                text = emit_source(plan, spec_label(source), overrides=overrides, target=target)
                name = spec.name
        except EmitError as exc:
            raise SpecError([f"{source}: cannot write source: {problem}" for problem in exc.problems]) from None
        return name, folder / f"{name}.py", text.encode("utf-8")

    def write(path: Path, data: bytes) -> bool:
        return write_generated(path, data.decode("utf-8"), force=force)

    tally = FileTally("source file", "source files", verbose=verbose)
    write_per_spec(sources, make, write, step="build", to_stdout=to_stdout, tally=tally)


def write_generated(path: Path, text: str, *, force: bool = False) -> bool:
    """Write ``text`` to ``path`` atomically; False when it already holds exactly that.

    Refuses (SpecError) to replace a file whose first line is not the do-not-edit marker line,
    since that file was written by hand, unless ``force``.
    """
    from ..files import SOURCE, write_output

    return write_output(path, text.encode("utf-8"), force=force, hint="use --force to replace it", kind=SOURCE)
