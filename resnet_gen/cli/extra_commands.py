"""Registration point for commands that live next to their back ends (build, diagram, ...)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add every optional command to ``cli``."""
    from ..diagram.command import command as diagram_command

    cli.add_command(diagram_command())

    from ..emit.command import command as build_command

    cli.add_command(build_command())

    from .backbone_commands import export, weights

    cli.add_command(weights)
    cli.add_command(export)

    from .new_command import new

    cli.add_command(new)

    from .diff_command import diff

    cli.add_command(diff)

    from .gallery_command import gallery

    cli.add_command(gallery)
