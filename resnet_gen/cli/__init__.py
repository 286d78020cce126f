"""The ``resnet-gen`` command. Each command lives in its own module; none imports torch unless
it needs a live model."""

from __future__ import annotations

import sys

import click

from .. import user_cache
from ..errors import SpecError
from . import command_table
from .app import cli

# Every command is imported when it runs: each start of the tool pays only for its own command.
command_table.register(cli)


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad specs exit 1, bad usage exits 2, each with one line on stderr."""
    user_cache.use_for_templates()
    try:
        cli.main(args=argv, prog_name="resnet-gen", standalone_mode=False)
    except SystemExit as exc:
        # click turns a closed stdout (``resnet-gen info x | head -1``) into exit 1 after pacifying
        # the streams; the reader chose to stop reading, which is no failure of ours.
        if exc.code == 1 and type(sys.stdout).__name__ == "_PacifyFlushWrapper":
            sys.exit(0)
        raise
    except SpecError as exc:
        for line in exc.problems:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        if type(exc).__name__.startswith("NoArgsIsHelp") and exc.ctx is not None:
            click.echo(exc.ctx.get_help(), err=True)
            sys.exit(2)
        command = exc.ctx.command_path if exc.ctx is not None else "resnet-gen"
        message = " ".join(exc.format_message().split())
        click.echo(f"usage error: {message} (see '{command} --help')", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        from .output import discard_stdout

        discard_stdout()  # else flushing stdout at exit fails again and the status is 1
        sys.exit(0)
