"""diff: what changes between two specs, field by field and stage by stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..analysis import Report, analyze
from ..compare import ABSENT, field_changes, format_delta, stage_deltas
from ..diagram.choices import FORMATS, GraphvizNotFound
from ..errors import SpecError
from ..layout_dispatch import load_with_report
from ..spec import Spec
from ..unet.spec import UNetSpec


def _show(value: Any) -> str:
    return "(absent)" if value is ABSENT else json.dumps(value, sort_keys=True)


def _size(row: Any) -> str:
    return "-" if row is None or row.output_size is None else f"{row.output_size[0]}x{row.output_size[1]}"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        cells = [c.ljust(widths[i]) if i in (0, 1) else c.rjust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


# A spec's own identity, never inherited through extends: every variant differs here, so these are
# not changes the user made to the network.
_IDENTITY = ("name", "description", "reference")


def network_changes(old: Spec | UNetSpec, new: Spec | UNetSpec) -> list[tuple[str, Any, Any]]:
    """:func:`field_changes` without the identity fields (name, description, reference)."""
    return [change for change in field_changes(old, new) if change[0].split(".")[0].split("[")[0] not in _IDENTITY]


def _macs_delta(old: int, new: int) -> str:
    """A MACs delta in millions, like the table's MACs columns: ``+179.52M (+4.4%)``."""
    change = new - old
    if old == 0:
        return f"{change / 1e6:+,.2f}M" if change else "0"
    return f"{change / 1e6:+,.2f}M ({100 * change / old:+.1f}%)"


def diff_text(old: Spec | UNetSpec, new: Spec | UNetSpec, reports: tuple[Report, Report] | None = None) -> str:
    """The fields that differ between two loaded specs, then the per-stage table with deltas, then
    totals. ``reports``: the two specs' reports, where they are at hand (a U-Net's must be)."""
    if reports is None:
        assert isinstance(old, Spec) and isinstance(new, Spec), "a U-Net's report comes with it"
        reports = analyze(old), analyze(new)
    old_report, new_report = reports
    lines = [f"{old.name} -> {new.name}", "", "fields:"]
    changes = network_changes(old, new)
    lines += [f"  {path}: {_show(a)} -> {_show(b)}" for path, a, b in changes] or ["  (no resolved field differs)"]
    lines.append("")
    rows: list[tuple[str, ...]] = [
        ("stage", "output", "params old", "params new", "delta", "MACs old", "MACs new", "delta")
    ]
    for delta in stage_deltas(old_report, new_report):
        a, b = delta.old, delta.new
        rows.append(
            (
                delta.name + ("*" if delta.changed else ""),
                f"{_size(a)} -> {_size(b)}" if _size(a) != _size(b) else _size(a),
                "-" if a is None else f"{a.params:,}",
                "-" if b is None else f"{b.params:,}",
                format_delta(a.params if a else 0, b.params if b else 0),
                "-" if a is None else f"{a.macs / 1e6:,.2f}M",
                "-" if b is None else f"{b.macs / 1e6:,.2f}M",
                _macs_delta(a.macs if a else 0, b.macs if b else 0),
            )
        )
    rows.append(
        (
            "total",
            "",
            f"{old_report.params:,}",
            f"{new_report.params:,}",
            format_delta(old_report.params, new_report.params),
            f"{old_report.macs / 1e6:,.2f}M",
            f"{new_report.macs / 1e6:,.2f}M",
            _macs_delta(old_report.macs, new_report.macs),
        )
    )
    lines += _table(rows)
    lines += [
        "",
        "* stage differs (shape, channels, blocks, params, MACs or layers)",
        "(name, description and reference belong to each spec and are not compared)",
    ]
    return "\n".join(lines)


def diagram_format(path: Path) -> str:
    """The format named by ``path``'s suffix; a usage error for any other suffix."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        choices = ", ".join(f".{name}" for name in FORMATS)
        got = f"'{path.suffix}'" if path.suffix else "no suffix"
        raise click.UsageError(f"--diagram: the file name must end in one of {choices} (got {got})")
    return fmt


def draw_diff(old: Spec, new: Spec, fmt: str) -> bytes:
    """Both macro views side by side, the stages that differ highlighted, as ``fmt`` bytes."""
    from ..diagram import render
    from ..diagram.diff_view import diff_view
    from ..plan import lower

    return render(diff_view(lower(old), lower(new)), fmt)


@click.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--diagram",
    "diagram_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Also draw both macro views side by side (OLD left, NEW right), the stages that differ "
    "in red, into PATH; the suffix picks the format: .svg, .png, .pdf or .dot (.dot needs no Graphviz).",
)
def diff(old: str, new: str, diagram_path: Path | None) -> None:
    """Compare spec OLD with spec NEW: differing fields and per-stage params/MACs/shapes.

    A stage is marked as changed (* in the table, red in the diagram) when its output shape,
    channels, blocks, parameters, MACs or layers differ.
    """
    from ..files import check_output_file, write_output

    fmt = diagram_format(diagram_path) if diagram_path is not None else None
    if diagram_path is not None:
        check_output_file(diagram_path, "--diagram")
    (old_spec, old_report), (new_spec, new_report) = load_with_report(old), load_with_report(new)
    if isinstance(old_spec, UNetSpec) or isinstance(new_spec, UNetSpec):
        if not (isinstance(old_spec, UNetSpec) and isinstance(new_spec, UNetSpec)):
            raise SpecError(
                [f"{old} and {new}: one is a diffusion U-Net and one a classifier; compare specs of one layout"]
            )
        if diagram_path is not None:
            raise SpecError(["--diagram draws two classifiers side by side; draw each U-Net with 'resnet-gen diagram'"])
    text = diff_text(old_spec, new_spec, (old_report, new_report))
    if diagram_path is not None and fmt is not None:
        assert isinstance(old_spec, Spec) and isinstance(new_spec, Spec)
        try:
            data = draw_diff(old_spec, new_spec, fmt)
        except GraphvizNotFound as exc:
            raise click.ClickException(str(exc)) from None
        write_output(diagram_path, data, hint="choose another path for --diagram")
    click.echo(text)
    if diagram_path is not None:
        click.echo(f"wrote {diagram_path}")
