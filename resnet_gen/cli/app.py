"""The click group and options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import __version__
from .lazy_group import LazyGroup

F = TypeVar("F", bound=Callable[..., Any])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="resnet-gen")
def cli() -> None:
    """Declarative ResNet architectures: validate, analyse, emit PyTorch source, draw diagrams."""


def set_option(func: F) -> F:
    """``--set PATH=VALUE``, repeatable: override a spec field after ``extends``."""
    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="PATH=VALUE",
        help="Override a field, e.g. --set head.num_classes=10 --set stages[3].blocks=4.",
    )(func)


def update_option(section: str) -> Callable[[F], F]:
    """``--update FILE``: rewrite one generated section of a Markdown file between its markers."""
    return click.option(
        "--update",
        "update_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help=f"Rewrite the {section} markers in FILE (e.g. README.md).",
    )
