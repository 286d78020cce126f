"""validate, info, list, schema: the commands of the front end and the report."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import catalog
from ..analysis import Report, analyze
from ..errors import SpecError
from ..spec import Spec
from ..spec.load import ParentCache, load_spec_and_plan
from ..spec.schema import file_schema
from .app import set_option, update_option


def expand_sources(sources: tuple[str, ...]) -> list[str]:
    """Spec arguments, or the whole catalog when none are given."""
    return list(sources) if sources else [str(path) for path in sorted(catalog.specs_dir().glob("*.yaml"))]


@click.command()
@click.argument("specs", nargs=-1)
@set_option
def validate(specs: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Check specs (files or catalog names; all shipped specs when none given)."""
    problems: list[str] = []
    sources = expand_sources(specs)
    parents = ParentCache()
    for source in sources:
        try:
            spec, plan = load_spec_and_plan(source, list(overrides), parents=parents)
            report = analyze(plan)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        click.echo(f"ok  {spec.name:<28} {report.params:>13,} params  {report.macs / 1e9:8.3f} GMACs")
    if problems:
        raise SpecError(problems)


def _fmt_size(size: tuple[int, int] | None) -> str:
    return "-" if size is None else f"{size[0]}x{size[1]}"


def render_report(spec: Spec, report: Report) -> str:
    """A plain-text table like the paper's Table 1, then totals."""
    header = f"{report.name}: {report.description}" if report.description else report.name
    size = report.input_size
    lines = [header, f"input: {report.input_channels}x{size[0]}x{size[1]}", ""]
    columns = ("stage", "output", "channels", "blocks", "params", "MACs", "layers")
    rows = [columns]
    for row in report.rows:
        rows.append(
            (
                row.name,
                _fmt_size(row.output_size),
                str(row.channels),
                str(row.blocks or ""),
                f"{row.params:,}",
                f"{row.macs / 1e6:,.2f}M",
                row.detail,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    for index, row_cells in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i in (0, 1, 6) else cell.rjust(widths[i]) for i, cell in enumerate(row_cells)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [
        "",
        f"params: {report.params:,}",
        f"MACs:   {report.macs:,} ({report.macs / 1e9:.3f} G)  [conv + linear, batch 1]",
        f"FLOPs:  {report.flops:,} ({report.flops / 1e9:.3f} G)  [= 2 x MACs]",
    ]
    if report.features:
        maps = (f"{t.module} {t.channels}x{t.size[0]}x{t.size[1]} (/{t.reduction})" for t in report.features)
        lines.append(f"features: {', '.join(maps)}")
    if report.frozen:
        lines.append(f"frozen: {', '.join(report.frozen)} (no gradients, eval mode)")
    if spec.reference is not None:
        ref = spec.reference
        checks = []
        if ref.params is not None:
            checks.append(f"params {'match' if ref.params == report.params else f'DIFFER (reference {ref.params:,})'}")
        if ref.gmacs is not None:
            digits = len(repr(ref.gmacs).partition(".")[2])
            same = round(report.macs / 1e9, digits) == ref.gmacs
            checks.append(f"GMACs {'match' if same else f'DIFFER (reference {ref.gmacs})'}")
        lines.append(f"reference: {ref.source}: {', '.join(checks) or 'no numbers'}")
    return "\n".join(lines)


@click.command()
@click.argument("spec")
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def info(spec: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Per-stage table (output size, channels, blocks, params, MACs) and totals."""
    loaded, plan = load_spec_and_plan(spec, list(overrides))
    report = analyze(plan)
    if as_json:
        data = {
            "name": report.name,
            "params": report.params,
            "macs": report.macs,
            "flops": report.flops,
            "input": [report.input_channels, *report.input_size],
            "rows": [
                {
                    "name": r.name,
                    "output_size": list(r.output_size) if r.output_size else None,
                    "channels": r.channels,
                    "blocks": r.blocks,
                    "params": r.params,
                    "macs": r.macs,
                }
                for r in report.rows
            ],
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
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(render_report(loaded, report))


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
    for name in catalog.catalog_names():
        spec, plan = load_spec_and_plan(name, parents=parents)
        if family and spec.family != family:
            continue
        report = analyze(plan)
        rows.append(
            (spec.name, spec.family, f"{report.params / 1e6:.2f}M", f"{report.macs / 1e9:.3f}G", spec.description)
        )
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


def _list_markdown(family: str | None, update_path: Path | None) -> None:
    from .. import catalog_table

    if update_path is not None and family is not None:
        raise click.UsageError("--update writes the whole catalog; drop --family")
    table = catalog_table.render_markdown(catalog_table.catalog_rows(family))
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
