"""Registration point for commands that live next to their back ends (build, diagram, ...)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add every optional command to ``cli``."""
    _ = cli
