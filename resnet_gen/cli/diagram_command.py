"""``resnet-gen diagram``: draw specs into files (or stdout). Graphviz is imported only when drawing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..diagram.choices import DIRECTIONS, FORMATS, VIEWS, GraphvizNotFound


def output_name(name: str, view: str, fmt: str) -> str:
    """``resnet50.svg`` for the macro view, ``resnet50-blocks.svg`` for the block view."""
    return f"{name}{'' if view == 'macro' else f'-{view}'}.{fmt}"


def command() -> click.Command:
    """The ``diagram`` command. Built when the command is first used, so that listing the
    other commands loads none of its back end."""
    from .app import set_option
    from .sources import catalog_option, verbose_option

    decorators = [
        click.command("diagram"),
        click.argument("specs", nargs=-1),
        click.option(
            "--view",
            type=click.Choice(VIEWS),
            default="macro",
            show_default=True,
            help="Stages, or blocks layer by layer.",
        ),
        click.option(
            "--format", "fmt", type=click.Choice(FORMATS), default="svg", show_default=True, help="Output format."
        ),
        click.option(
            "--direction",
            type=click.Choice(DIRECTIONS),
            default="TB",
            show_default=True,
            help="Top to bottom or left to right.",
        ),
        click.option(
            "-o",
            "--output",
            "out_dir",
            type=click.Path(path_type=Path),
            default=None,
            help="Folder for the files (named <spec>.<format>, <spec>-blocks.<format> for --view blocks)"
            "  [default: out/, or generated/ with --catalog]",
        ),
        click.option("--stdout", "to_stdout", is_flag=True, help="Write the one spec's diagram to stdout instead."),
        set_option,
        catalog_option,
        verbose_option,
    ]
    func: Any = diagram
    for decorate in reversed(decorators):
        func = decorate(func)
    assert isinstance(func, click.Command)
    return func


def diagram(
    specs: tuple[str, ...],
    view: str,
    fmt: str,
    direction: str,
    out_dir: Path | None,
    to_stdout: bool,
    overrides: tuple[str, ...],
    use_catalog: bool,
    verbose: bool,
) -> None:
    """Draw diagrams (your specs or --catalog).

    Specs are files or catalog names; with none, the specs in your folder (./specs, or ./my_specs
    in a checkout of resnet-gen), or with --catalog every shipped spec.

    `--format dot` needs nothing else; svg, png and pdf need Graphviz's `dot` program.
    """
    from ..compile import compile_spec
    from ..diagram import diagram as make_diagram
    from ..diagram import render
    from ..files import write_output
    from ..spec.load import is_unet
    from .output import FileTally, prepare_outputs, write_per_spec
    from .sources import with_identity

    sources, folder = prepare_outputs(specs, use_catalog, out_dir, to_stdout=to_stdout, verb="draws")

    def make(source: str) -> tuple[str, Path, bytes]:
        try:
            if is_unet(source):
                from ..unet.diagram import draw_unet

                unet, data = draw_unet(source, with_identity(source, overrides), view, fmt, direction)
                name = unet.name
            else:
                spec, plan = compile_spec(source, with_identity(source, overrides))
                data = render(make_diagram(plan, view, direction=direction), fmt)
                name = spec.name
        except GraphvizNotFound as exc:
            raise click.ClickException(str(exc)) from None
        return name, folder / output_name(name, view, fmt), data

    tally = FileTally("diagram", "diagrams", verbose=verbose)
    write_per_spec(sources, make, write_output, step="diagram", to_stdout=to_stdout, tally=tally)
