"""gallery: write the catalog as a static web page."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("gallery")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated/gallery"),
    show_default=True,
    help="Folder for index.html, the diagrams (svg/) and each spec's emitted source (src/), all linked relatively.",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("docs/experiments"),
    show_default=True,
    help="Folder of analysis figures (resnet-gen analyze -o DIR); each card links those naming its spec.",
)
def gallery(output: Path, plots: Path) -> None:
    """Static page of every shipped spec: diagram, stages, reference check, parent; filter and search."""
    from ..gallery import build_gallery

    index = build_gallery(output, plots=plots)
    click.echo(f"wrote {index}")
