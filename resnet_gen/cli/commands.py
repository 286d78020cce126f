"""info, list, schema: the commands of the report and the catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import catalog
from ..analysis import Report
from ..counting import CONVENTION_RULES, CONVENTIONS, UNET_CONVENTION_RULES, Convention
from ..layer_table import LayerRow
from ..layout_dispatch import load_with_report
from ..memory_estimate import DTYPES, OPTIMIZERS, Dtype, MemoryEstimate, Optimizer
from ..spec import Spec
from ..spec.load import ParentCache
from .app import set_option, update_option
from .sources import with_identity

if TYPE_CHECKING:
    from ..unet.spec import UNetSpec

__all__ = ["info", "list_specs", "render_report", "schema"]


def _fmt_size(size: tuple[int, int] | None) -> str:
    return "-" if size is None else f"{size[0]}x{size[1]}"


def _header(name: str, description: str) -> str:
    """``name: description``, without repeating a name the description already starts with."""
    if not description:
        return name
    if description.startswith(name) and description[len(name) : len(name) + 1] in (":", " ", ""):
        return description
    return f"{name}: {description}"


def render_report(
    spec: Spec | UNetSpec,
    report: Report,
    *,
    overridden: bool = False,
    convention: Convention = "torchvision",
    macs_note: str | None = None,
) -> str:
    """A plain-text table like the paper's Table 1, then totals. ``overridden``: the network was
    changed with --set, so its reference numbers are not expected to hold; ``convention``: whose
    MACs the table and totals give."""
    header = _header(report.name, report.description)
    size = report.input_size
    lines = [header, f"input: {report.input_channels}x{size[0]}x{size[1]}", ""]
    by_row = report.row_macs(convention) if convention != "torchvision" else {}
    columns = (
        "stage",
        "output",
        "channels",
        "blocks",
        "params",
        f"MACs ({convention})" if by_row else "MACs",
        "layers",
    )
    rows = [columns]
    for row in report.rows:
        rows.append(
            (
                row.name,
                _fmt_size(row.output_size),
                str(row.channels),
                str(row.blocks or ""),
                f"{row.params:,}",
                f"{by_row.get(row.name, row.macs) / 1e6:,.2f}M",
                row.detail,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    for index, row_cells in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i in (0, 1, 6) else cell.rjust(widths[i]) for i, cell in enumerate(row_cells)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    macs = report.count(convention)
    rule = "conv + linear, batch 1" if convention == "torchvision" else f"{convention}: {CONVENTION_RULES[convention]}"
    rule = macs_note or rule
    activations = report.activations
    lines += [
        "",
        f"params: {report.params:,}",
        f"MACs:   {macs:,} ({macs / 1e9:.3f} G)  [{rule}]",
        f"FLOPs:  {2 * macs:,} ({2 * macs / 1e9:.3f} G)  [= 2 x MACs]",
        f"activations: {activations:,} ({activations / 1e6:.2f} M)  [{report.activations_counted}]",
    ]
    if report.features:
        maps = (f"{t.module} {t.channels}x{t.size[0]}x{t.size[1]} (/{t.reduction})" for t in report.features)
        lines.append(f"features: {', '.join(maps)}")
    if report.frozen:
        lines.append(f"frozen: {', '.join(report.frozen)} (no gradients, eval mode)")
    if spec.reference is not None:
        from ..reference_check import reference_checks

        ref = spec.reference
        checks = [
            f"{label} {'match' if same else f'DIFFER (reference {stated})'}"
            for label, same, stated in reference_checks(ref, report.params, report.macs)
        ]
        if overridden and any("DIFFER" in check for check in checks):
            checks = ["reference numbers do not apply to this override"]
        lines.append(f"reference: {ref.source}: {', '.join(checks) or 'no numbers'}")
    return "\n".join(lines)


@click.command()
@click.argument("spec")
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--count",
    "convention",
    type=click.Choice(CONVENTIONS),
    default="torchvision",
    show_default=True,
    help="Whose MACs: torchvision (conv + linear, the papers'), fvcore or ptflops (see the README).",
)
@click.option("--depth", type=click.IntRange(min=1), default=None, help="Add a per-layer table down to this depth.")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Add a training-memory estimate at this batch.")
@click.option("--dtype", type=click.Choice(DTYPES), default=None, help="The memory estimate's dtype [default: fp32].")
@click.option(
    "--optimizer", type=click.Choice(OPTIMIZERS), default=None, help="The memory estimate's optimizer [default: sgd]."
)
def info(
    spec: str,
    overrides: tuple[str, ...],
    as_json: bool,
    convention: Convention,
    depth: int | None,
    batch: int | None,
    dtype: Dtype | None,
    optimizer: Optimizer | None,
) -> None:
    """Per-stage table (output size, channels, blocks, params, MACs) and totals.

    --count picks whose MACs to report, --depth adds a per-layer table, --batch (with --dtype and
    --optimizer) a training-memory estimate."""
    loaded, report = load_with_report(spec, with_identity(spec, overrides))
    wants_memory = batch is not None or dtype is not None or optimizer is not None
    rows = report.per_layer(depth, convention) if depth is not None else None
    memory = report.memory(batch or 1, dtype or "fp32", optimizer or "sgd") if wants_memory else None
    if not isinstance(loaded, Spec):  # a U-Net
        _unet_info(loaded, report, convention, rows, memory, as_json=as_json, overridden=bool(overrides))
        return
    if as_json:
        data = {
            "name": report.name,
            "params": report.params,
            "macs": report.macs,
            "flops": report.flops,
            "activations": report.activations,
            "count": {"convention": convention, "macs": report.count(convention)},
            "input": [report.input_channels, *report.input_size],
            "rows": _rows_json(report),
            "features": [
                {
                    "index": t.index,
                    "module": t.module,
                    "channels": t.channels,
                    "reduction": t.reduction,
                    "size": list(t.size),
                }
                for t in report.features
            ],
            "frozen": list(report.frozen),
        }
        data.update(_optional_json(rows, memory))
        click.echo(json.dumps(data, indent=2))
        return
    text = render_report(loaded, report, overridden=bool(overrides), convention=convention)
    if rows is not None:
        text += "\n\n" + render_layers(rows, convention)
    if memory is not None:
        text += "\n\n" + render_memory(memory)
    click.echo(text)


def render_layers(rows: tuple[LayerRow, ...], convention: Convention) -> str:
    """The per-layer table: one line per module, indented by depth (torchinfo's layout)."""
    columns = ("layer", "kind", "output", "params", f"MACs ({convention})", "share")
    cells = [columns]
    for row in rows:
        cells.append(
            (
                "  " * (row.depth - 1) + row.path,
                row.kind,
                "x".join(str(size) for size in row.output_shape),
                f"{row.params:,}",
                f"{row.macs:,}",
                f"{100 * row.share:.2f}%",
            )
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for index, line in enumerate(cells):
        lines.append(
            "  ".join(c.ljust(widths[i]) if i < 3 else c.rjust(widths[i]) for i, c in enumerate(line)).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_memory(memory: MemoryEstimate) -> str:
    """The training-memory breakdown in bytes and MiB."""
    lines = [f"training memory, batch {memory.batch}, {memory.dtype}, {memory.optimizer} (estimate):"]
    rows = memory.rows()
    width = max(len(name) for name, _ in rows)
    digits = max(len(f"{value:,}") for _, value in rows)
    for name, value in rows:
        lines.append(f"  {name.ljust(width)}  {value:>{digits},} bytes  {value / 2**20:>10,.1f} MiB")
    return "\n".join(lines)


def _optional_json(rows: tuple[LayerRow, ...] | None, memory: MemoryEstimate | None) -> dict[str, object]:
    """The per-layer table and the memory estimate in --json, where they were asked for."""
    data: dict[str, object] = {}
    if rows is not None:
        data["layers"] = [
            {
                "path": r.path,
                "kind": r.kind,
                "output_shape": list(r.output_shape),
                "params": r.params,
                "macs": r.macs,
                "share": r.share,
            }
            for r in rows
        ]
    if memory is not None:
        data["memory"] = {
            "batch": memory.batch,
            "dtype": memory.dtype,
            "optimizer": memory.optimizer,
            "bytes": {name: value for name, value in memory.rows()},
        }
    return data


def _rows_json(report: Report) -> list[dict[str, object]]:
    return [
        {
            "name": r.name,
            "output_size": list(r.output_size) if r.output_size else None,
            "channels": r.channels,
            "blocks": r.blocks,
            "params": r.params,
            "macs": r.macs,
        }
        for r in report.rows
    ]


def _unet_info(
    loaded: UNetSpec,
    report: Report,
    convention: Convention,
    rows: tuple[LayerRow, ...] | None,
    memory: MemoryEstimate | None,
    *,
    as_json: bool,
    overridden: bool,
) -> None:
    """A U-Net's report, laid out as a classifier's: params and MACs per stage in ``convention``
    (torchvision's is the one its plan states), activations, and the per-layer table and memory
    estimate when asked for."""
    from ..unet.plan import MACS_CONVENTION
    from ..unet.report import MACS_NOTE, UNetReport

    assert isinstance(report, UNetReport)
    macs = report.count(convention)
    statement = MACS_CONVENTION if convention == "torchvision" else f"{convention}: {UNET_CONVENTION_RULES[convention]}"
    if as_json:
        data: dict[str, object] = {
            "name": report.name,
            "params": report.params,
            "macs": report.macs,
            "flops": report.flops,
            "activations": report.activations,
            "count": {"convention": convention, "macs": macs},
            "input": [report.input_channels, *report.input_size],
            "rows": _rows_json(report),
            "macs_convention": statement,
        }
        data.update(_optional_json(rows, memory))
        click.echo(json.dumps(data, indent=2))
        return
    note = MACS_NOTE if convention == "torchvision" else convention  # its rules follow the table
    text = render_report(loaded, report, overridden=overridden, convention=convention, macs_note=note)
    text += f"\nMACs convention: {statement}"
    if rows is not None:
        text += "\n\n" + render_layers(rows, convention)
    if memory is not None:
        text += "\n\n" + render_memory(memory)
    click.echo(text)


@click.command("list")
@click.option("--family", default=None, help="Only this family (resnet, resnext, ...).")
@click.option("--markdown", is_flag=True, help="Print the README's Markdown table (params, MACs, reference check).")
@update_option("Markdown table between the catalog")
def list_specs(family: str | None, markdown: bool, update_path: Path | None) -> None:
    """The catalog: name, family, params, MACs and a one-line description."""
    if markdown or update_path is not None:
        _list_markdown(family, update_path)
        return
    rows = []
    parents = ParentCache()
    families: set[str] = set()
    for name in catalog.catalog_names():
        spec, report = load_with_report(name, parents=parents)
        families.add(spec.family)
        if family and spec.family != family:
            continue
        rows.append(
            (spec.name, spec.family, f"{report.params / 1e6:.2f}M", f"{report.macs / 1e9:.3f}G", spec.description)
        )
    if family and not rows:
        raise _no_such_family(family, families)
    head = ("name", "family", "params", "MACs", "description")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for row in [head, *rows]:
        click.echo(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row[:4], widths, strict=True))
            )
            + "  "
            + row[4]
        )


def _no_such_family(family: str, families: set[str]) -> click.BadParameter:
    known = ", ".join(sorted(families))
    return click.BadParameter(
        f"no shipped spec is in the family {family!r}; the families are {known}", param_hint="--family"
    )


def _list_markdown(family: str | None, update_path: Path | None) -> None:
    from .. import catalog_table

    if update_path is not None and family is not None:
        raise click.UsageError("--update writes the whole catalog; drop --family")
    rows = catalog_table.catalog_rows(family)
    if family is not None and not rows:
        raise _no_such_family(family, {row.family for row in catalog_table.catalog_rows()})
    table = catalog_table.render_markdown(rows)
    if update_path is None:
        click.echo(table, nl=False)
        return
    changed = catalog_table.update_file(update_path, table)
    click.echo(f"{update_path}: catalog table {'updated' if changed else 'already up to date'}")


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to a file.")
@click.option("--markdown", is_flag=True, help="The README's field reference (every key, type, default) in Markdown.")
@update_option("field reference between the fields")
def schema(output: Path | None, markdown: bool, update_path: Path | None) -> None:
    """The JSON Schema of a spec file, for editor completion and checks (or the field reference)."""
    from ..files import check_output_file, write_output

    if output is not None:
        check_output_file(output)

    if update_path is not None:
        _update_field_reference(output, update_path)
        return
    if markdown:
        from .. import spec_reference

        text = spec_reference.render_markdown(spec_reference.reference_sections())
    else:
        from ..spec.schema import file_schema

        text = json.dumps(file_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text.encode("utf-8"))


def _update_field_reference(output: Path | None, update_path: Path) -> None:
    from .. import spec_reference

    if output is not None:
        raise click.UsageError("--update rewrites FILE in place; drop -o")
    reference = spec_reference.render_markdown(spec_reference.reference_sections())
    changed = spec_reference.update_file(update_path, reference)
    click.echo(f"{update_path}: field reference {'updated' if changed else 'already up to date'}")
