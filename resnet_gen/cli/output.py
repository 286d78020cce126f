"""What commands print: one summary line by default, a line per file with ``-v``.

A reader that stops early (``resnet-gen build -v | head -3``) must not stop the work: once stdout
is closed, further lines go nowhere and the files are still written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import click

T = TypeVar("T")


def echo(line: str) -> None:
    """``click.echo`` that survives a closed pipe: the rest of the output is dropped."""
    try:
        click.echo(line)
    except BrokenPipeError:
        discard_stdout()


def discard_stdout() -> None:
    """Point stdout at /dev/null, so that a reader's closed pipe fails no later write or flush."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real stream (a test runner's buffer)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def progress(items: list[T], label: str) -> Iterator[T]:
    """Iterate ``items`` with a progress bar on stderr when it is a terminal and there are many."""
    if len(items) < 8 or not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(items, label=label, file=sys.stderr) as bar:
        yield from bar


class FileTally:
    """Counts written and unchanged files of one kind: ``134 diagrams: 3 written, 131 up to date``."""

    def __init__(self, singular: str, plural: str, *, verbose: bool) -> None:
        self.singular, self.plural, self.verbose = singular, plural, verbose
        self.written: list[Path] = []
        self.unchanged: list[Path] = []

    def add(self, path: Path, changed: bool) -> None:
        (self.written if changed else self.unchanged).append(path)
        if self.verbose:
            echo(f"{'wrote' if changed else 'up to date'} {path.as_posix()}")

    def summary(self) -> str:
        """One line; a single file is named."""
        total = len(self.written) + len(self.unchanged)
        if total == 1 and not self.verbose:
            path = (self.written or self.unchanged)[0]
            return f"{'wrote' if self.written else 'up to date'} {path.as_posix()}"
        kind = self.singular if total == 1 else self.plural
        parts = [f"{len(self.written)} written", f"{len(self.unchanged)} up to date"]
        folders = sorted({path.parent.as_posix() for path in [*self.written, *self.unchanged]})
        where = f" in {folders[0]}/" if len(folders) == 1 else ""
        return f"{total} {kind}{where}: {', '.join(parts)}"

    def finish(self) -> None:
        """Print the summary, unless nothing was written or checked."""
        if self.written or self.unchanged:
            echo(self.summary())
