"""What commands print: one summary line by default, a line per file with ``-v``.

A reader that stops early (``resnet-gen build -v | head -3``) must not stop the work: once stdout
is closed, further lines go nowhere and the files are still written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sized
from pathlib import Path
from typing import TypeVar

import click

from ..errors import SpecError

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


def progress(items: Iterable[T], label: str, length: int | None = None) -> Iterator[T]:
    """Iterate ``items`` (``length`` of them, for an iterator) with a progress bar on stderr when
    it is a terminal and there are many."""
    count = len(items) if isinstance(items, Sized) else length
    if count is None or count < 8 or not sys.stderr.isatty():
        yield from items
        return
    with click.progressbar(items, length=count, label=label, file=sys.stderr) as bar:
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


def prepare_outputs(
    specs: tuple[str, ...], use_catalog: bool, out_dir: Path | None, *, to_stdout: bool, verb: str, sub: str = ""
) -> tuple[list[str], Path]:
    """The specs a command that writes one file per spec runs on, and the folder it writes to
    (made, unless it writes to stdout, which takes exactly one spec: "--stdout <verb> exactly one spec")."""
    from ..files import output_folder
    from .sources import default_output, expand_sources

    if out_dir is None:
        out_dir = default_output(use_catalog, sub)
    sources = expand_sources(specs, use_catalog)
    if to_stdout and len(sources) != 1:
        raise click.UsageError(f"--stdout {verb} exactly one spec (got {len(sources)})")
    if not to_stdout:
        output_folder(out_dir)
    return sources, out_dir


def write_per_spec(
    sources: list[str],
    make: Callable[[str], tuple[str, Path, bytes]],
    write: Callable[[Path, bytes], bool],
    *,
    step: str,
    to_stdout: bool,
    tally: FileTally,
) -> None:
    """Make each spec's file (``make``: the spec's name, its path, its bytes; SpecError on a
    problem) and write them all, or the one to stdout. A problem with one spec is reported with the
    others' at the end, after the rest are written; two specs that would write one path write
    nothing, since which was meant is the user's call."""
    from ..files import same_name_problem

    problems: list[str] = []
    collisions: list[str] = []
    outputs: dict[Path, tuple[str, bytes]] = {}  # path -> (the spec as given, its file)
    for source in progress(sources, step):
        try:
            name, path, data = make(source)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if to_stdout:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            continue
        if path in outputs:
            collisions.append(same_name_problem(path, outputs[path][0], str(source), name))
            continue
        outputs[path] = (str(source), data)
    if collisions:
        raise SpecError(problems + collisions)
    for path, (_, data) in outputs.items():
        try:
            changed = write(path, data)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        tally.add(path, changed)
    tally.finish()
    if problems:
        raise SpecError(problems)
