"""diff: what changes between two specs, field by field and stage by stage."""

from __future__ import annotations

import json
from typing import Any

import click

from ..analysis import analyze
from ..compare import ABSENT, field_changes, format_delta, stage_deltas
from ..spec import load_spec


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


def render_diff(old_source: str, new_source: str) -> str:
    """The fields that differ, then the per-stage table with deltas, then totals."""
    old, new = load_spec(old_source), load_spec(new_source)
    old_report, new_report = analyze(old), analyze(new)
    lines = [f"{old.name} -> {new.name}", "", "fields:"]
    changes = field_changes(old, new)
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
                format_delta(a.macs if a else 0, b.macs if b else 0),
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
            format_delta(old_report.macs, new_report.macs),
        )
    )
    lines += _table(rows)
    lines += ["", "* stage differs (shape, channels, blocks, params, MACs or layers)"]
    return "\n".join(lines)


@click.command("diff")
@click.argument("old")
@click.argument("new")
def diff(old: str, new: str) -> None:
    """Compare spec OLD with spec NEW: differing fields and per-stage params/MACs/shapes."""
    click.echo(render_diff(old, new))
