"""gallery: write specs as a static web site (an overview grid and one page per spec)."""

from __future__ import annotations

from pathlib import Path

import click

from .sources import catalog_option, default_output, expand_sources


@click.command("gallery")
@click.argument("specs", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for index.html, pages/, the diagrams (svg/) and the emitted source (src/), all linked"
    " relatively  [default: out/gallery, or generated/gallery with --catalog]",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs/experiments"),
    show_default=True,
    help="Folder of analysis figures (resnet-gen analyze -o DIR); each spec's page links those naming it.",
)
@catalog_option
def gallery(specs: tuple[str, ...], output: Path | None, plots: Path, use_catalog: bool) -> None:
    """Write a web gallery (your specs or --catalog).

    Specs are files or catalog names; with none, the specs in your folder (./specs, or ./my_specs
    in a checkout of resnet-gen), or with --catalog every shipped spec. A grid with search and a family filter, and a page per spec with both diagrams, stages,
    reference check, parent, children and emitted source."""
    from ..files import output_folder
    from ..gallery import build_gallery

    if output is None:
        output = default_output(use_catalog, "gallery")
    output_folder(output)  # a bad folder is refused before any spec is read
    sources = expand_sources(specs, use_catalog)
    index = build_gallery(output, None if use_catalog else sources, plots=plots)
    click.echo(f"wrote {index.as_posix()} ({len(sources)} specs)")
