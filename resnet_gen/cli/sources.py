"""Which specs a command acts on, where its output goes, and how an overridden spec is named.

A user's specs live in their folder (``./specs``, or ``./my_specs`` in a checkout of this
repository, whose ``specs/`` is the catalog); the catalog is acted on only with ``--catalog``.
Ad-hoc output goes to ``out/``; ``generated/`` is written only for the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import catalog

F = TypeVar("F", bound=Callable[..., Any])

AD_HOC_OUTPUT = Path("out")
CATALOG_OUTPUT = Path("generated")
_MAX_DESCRIPTION = 500  # the spec language's limit


def catalog_option(func: F) -> F:
    """``--catalog``: act on every shipped spec (and write under generated/)."""
    return click.option(
        "--catalog",
        "use_catalog",
        is_flag=True,
        help="Every shipped spec (the catalog) instead of your own specs; output defaults to generated/.",
    )(func)


def verbose_option(func: F) -> F:
    """``-v``: one line per file instead of one summary line."""
    return click.option("-v", "--verbose", is_flag=True, help="One line per file, not just the summary.")(func)


def expand_sources(sources: tuple[str, ...], use_catalog: bool = False) -> list[str]:
    """The specs named, else the catalog with ``--catalog``, else the user's spec folder."""
    if use_catalog:
        if sources:
            raise click.UsageError("--catalog means every shipped spec; drop the spec arguments or --catalog")
        return [str(path) for path in catalog.catalog_paths()]
    if sources:
        return list(sources)
    folder = catalog.user_specs_dir()
    found = catalog.user_spec_paths()
    if not found:
        raise click.UsageError(
            f"no specs given and no spec files in {folder.as_posix()}/; name specs (files or catalog names),"
            " --catalog for the shipped ones, or start one with 'resnet-gen new NAME --from resnet50'"
        )
    return [path.as_posix() for path in found]


def default_output(use_catalog: bool, sub: str = "") -> Path:
    """generated/ (or generated/SUB) for the catalog, out/ (or out/SUB) for anything else."""
    base = CATALOG_OUTPUT if use_catalog else AD_HOC_OUTPUT
    return base / sub if sub else base


def with_identity(source: str, overrides: tuple[str, ...]) -> list[str]:
    """``--set`` items plus a name and description that say the network was overridden, so its
    files never carry the parent's name: ``resnet50`` with ``--set stages[2].blocks=4`` becomes
    ``resnet50_custom``, "resnet50 with stages[2].blocks=4". A ``--set name=`` or
    ``--set description=`` of the user's own wins."""
    items = list(overrides)
    if not items:
        return items
    keys = {item.partition("=")[0].strip() for item in items}
    from ..errors import SpecError
    from ..layout_dispatch import spec_name

    try:
        base = spec_name(source)
    except SpecError:
        return items  # loading with the overrides reports the problem
    if "name" not in keys:
        items.append(f"name={base}_custom")
    if "description" not in keys:
        description = f"{base} with {', '.join(overrides)}"
        if len(description) > _MAX_DESCRIPTION:
            description = description[: _MAX_DESCRIPTION - 3] + "..."
        items.append(f"description={json.dumps(description)}")
    return items
