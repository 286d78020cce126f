"""``resnet-gen build``: write standalone PyTorch source for specs. Never imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import SpecError
from .int8 import EMIT_TARGETS

DEFAULT_OUTPUT = {
    "training": Path("generated"),
    "inference": Path("generated/inference"),
    "int8": Path("generated/int8"),
}


def command() -> click.Command:
    """The ``build`` command. Built on demand: the shared ``--set`` option lives in the CLI
    package, which calls this while it is still loading."""
    from ..cli.app import set_option

    decorators = [
        click.command("build"),
        click.argument("specs", nargs=-1),
        click.option(
            "-o",
            "--output",
            "out_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Folder for the files (named <spec name>.py)  [default: generated, generated/inference or generated/int8]",
        ),
        click.option(
            "--target",
            type=click.Choice(EMIT_TARGETS),
            default="training",
            show_default=True,
            help="training: the network as the spec says; inference: batch norms folded into the convs,"
            " channels-last, no gradients or training-only parts, with fold_batch_norms to load a training checkpoint;"
            " int8: the inference form with quantize_int8 (post-training static quantisation, calibrated on your images).",
        ),
        click.option("--stdout", "to_stdout", is_flag=True, help="Write the one spec's source to stdout instead."),
        click.option("--force", is_flag=True, help="Overwrite files that resnet-gen did not write."),
        set_option,
    ]
    func: Any = build
    for decorate in reversed(decorators):
        func = decorate(func)
    assert isinstance(func, click.Command)
    return func


def build(
    specs: tuple[str, ...], out_dir: Path | None, target: str, to_stdout: bool, force: bool, overrides: tuple[str, ...]
) -> None:
    """Write standalone PyTorch source (files or catalog names; every shipped spec when none given).

    Each spec becomes <output>/<name>.py, which needs only torch. A file without resnet-gen's
    do-not-edit marker is never overwritten unless --force is given. With --target inference the
    file is for deployment (see --target); its factory takes the training form's state_dict.
    """
    from ..cli.commands import expand_sources
    from ..spec import load_spec
    from .source import emit_source
    from .values import EmitError

    if out_dir is None:
        out_dir = DEFAULT_OUTPUT[target]
    sources = expand_sources(specs)
    if to_stdout and len(sources) != 1:
        raise click.UsageError(f"--stdout writes exactly one spec (got {len(sources)})")
    problems: list[str] = []
    for source in sources:
        try:
            spec = load_spec(source, list(overrides))
            label = spec_label(source)
            text = emit_source(spec, label, overrides=overrides, target=target)
        except EmitError as exc:
            problems.extend(f"{label}: cannot write source: {problem}" for problem in exc.problems)
            continue
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        if to_stdout:
            click.echo(text, nl=False)
            continue
        path = out_dir / f"{spec.name}.py"
        try:
            changed = write_generated(path, text, force=force)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        click.echo(f"{'wrote' if changed else 'up to date'} {path}")
    if problems:
        raise SpecError(problems)


def spec_label(source: str | Path) -> str:
    """How the header names a spec file: ``specs/<name>.yaml`` for the catalog, else the path
    relative to the working folder (or as given), with forward slashes."""
    from .. import catalog
    from ..spec.load import spec_path

    path = spec_path(source)
    resolved = path.resolve()
    specs = catalog.specs_dir().resolve()
    if resolved.is_relative_to(specs):
        return f"specs/{resolved.relative_to(specs).as_posix()}"
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def write_generated(path: Path, text: str, *, force: bool = False) -> bool:
    """Write ``text`` to ``path`` atomically; False when it already holds exactly that.

    Refuses (SpecError) to replace a file whose first line lacks the do-not-edit marker, since
    that file was written by hand, unless ``force``.
    """
    from ..files import write_text_atomic
    from .source import MARKER

    if path.is_dir():
        raise SpecError(f"{path}: is a folder; choose another output folder with -o")
    if path.exists():
        try:
            old = path.read_bytes()
        except OSError as exc:
            raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
        if old == text.encode("utf-8"):
            return False
        first_line = old.split(b"\n", 1)[0].decode("utf-8", "replace")
        if MARKER not in first_line and not force:
            raise SpecError(
                f"{path}: exists and was not written by resnet-gen (no '{MARKER}' marker); not overwriting it, use --force to replace it"
            )
    write_text_atomic(path, text)
    return True
