"""A click group whose commands can be imported only when they are used.

The back ends' commands pull in their whole package (``build`` brings jinja2 and the emitter);
``resnet-gen validate`` needs none of that, and a command line tool pays for every import on every
run. Listing the commands (``resnet-gen --help``) imports them all, for their help lines.
"""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyGroup(click.Group):
    """``add_lazy_command("build", "resnet_gen.cli.build_command:command")`` registers a command by
    where it lives: a ``click.Command``, or a function without arguments that makes one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy: dict[str, str] = {}

    def add_lazy_command(self, name: str, import_path: str) -> None:
        if name in self.commands or name in self._lazy:
            raise ValueError(f"the command {name!r} is registered twice")
        self._lazy[name] = import_path

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, but a misspelt name is matched against every command, loaded or not
        (click suggests only from the loaded ones)."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.list_commands(ctx):
            raise click.exceptions.NoSuchCommand(name, possibilities=self.list_commands(ctx), ctx=ctx)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import_path = self._lazy.pop(cmd_name, None)
        if import_path is not None:
            self.add_command(_load(import_path, cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


def _load(import_path: str, name: str) -> click.Command:
    module_name, _, attribute = import_path.partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    command = found if isinstance(found, click.Command) else found()
    if not isinstance(command, click.Command) or command.name != name:
        raise TypeError(f"{import_path} does not make the command {name!r}")
    return command
