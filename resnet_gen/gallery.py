"""A static web gallery of specs: an overview grid and one page per spec.

``index.html`` is a grid of cards (name, family, params, MACs, a thumbnail of the macro diagram
that links to the spec's page) with a family filter and a search box (``?q=`` and ``?family=``
preset them; a spec's own name ranks before its description). ``pages/<name>.html`` shows both
diagrams full size, the per-stage table, the reference check, parent and children, and the
emitted source, which is also written to ``src/<name>.py``. No server, no network: every link
stays inside the written folder, so it can be moved or published as it is. The pages are
rendered from ``templates/gallery/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from . import catalog
from .analysis import Report
from .catalog import spec_label
from .catalog_table import _natural_key
from .diagram import draw
from .emit import emit
from .files import check_replaceable, output_folder, target_of, write_output
from .layout_dispatch import load_with_report
from .reference_check import reference_checks, reference_mismatches
from .spec import Spec
from .spec.load import spec_path
from .spec.yaml_source import read_yaml_file
from .unet.emit import emit_unet
from .unet.plan import lower_unet
from .unet.spec import UNetSpec


def _status(spec: Spec | UNetSpec, params: int, macs: int) -> tuple[str, str]:
    """(css class, text): whether the cited reference numbers are reproduced."""
    checks = reference_checks(spec.reference, params, macs)
    if not checks:
        return "none", "no reference numbers"
    problems = reference_mismatches(spec.reference, params, macs)
    if problems:
        return "bad", "differs: " + ", ".join(problems)
    return "ok", "reproduced: " + ", ".join(label for label, _, _ in checks)


def _parent(source: str) -> str | None:
    """The name the spec's file extends (as written: a catalog name or a relative path's stem)."""
    path = spec_path(source)
    parent = read_yaml_file(path, str(path)).data.get("extends")
    return Path(parent).stem if isinstance(parent, str) else None


def page_link(name: str) -> str:
    """A spec's page, relative to ``index.html``."""
    return f"pages/{name}.html"


def source_link(name: str) -> str:
    """Where the spec's emitted source is written, relative to ``index.html``."""
    return f"src/{name}.py"


def diagram_link(name: str, view: str = "macro") -> str:
    return f"svg/{name}{'' if view == 'macro' else f'-{view}'}.svg"


def plot_links(name: str, plots: Path | None, page_folder: Path) -> list[tuple[str, str]]:
    """(label, href relative to ``page_folder``) of each figure in ``plots`` that names the spec:
    the analyses write ``<analysis>-<spec>[-<spec>...].png``."""
    if plots is None or not plots.is_dir():
        return []
    found = []
    for figure in sorted(plots.glob("*.png")):
        analysis, *specs = figure.stem.split("-")
        if name in specs:
            found.append((analysis, Path(os.path.relpath(figure.resolve(), page_folder.resolve())).as_posix()))
    return found


@dataclass
class _Entry:
    spec: Spec | UNetSpec
    source: str
    report: Report
    parent: str | None
    children: list[str] = field(default_factory=list)


def _stage_rows(report: Report) -> list[dict[str, str]]:
    return [
        {
            "name": row.name,
            "output": "-" if row.output_size is None else f"{row.output_size[0]}x{row.output_size[1]}",
            "channels": str(row.channels),
            "blocks": str(row.blocks or ""),
            "params": f"{row.params:,}",
            "macs": f"{row.macs / 1e6:,.2f}M",
            "detail": row.detail,
        }
        for row in report.rows
    ]


def _common(entry: _Entry) -> dict[str, str]:
    spec, report = entry.spec, entry.report
    css, status = _status(spec, report.params, report.macs)
    return {
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "params": f"{report.params:,}",
        "gmacs": f"{report.macs / 1e9:.3f}",
        "status_class": css,
        "status": status,
    }


def _drawings(spec: Spec | UNetSpec) -> dict[str, bytes]:
    """SVG of each view: a classifier's macro and block views, a U-Net's U and its ResBlock."""
    if isinstance(spec, UNetSpec):
        from .diagram import render
        from .unet.diagram import resblock_diagram, unet_diagram

        plan = lower_unet(spec)
        return {"macro": render(unet_diagram(plan), "svg"), "blocks": render(resblock_diagram(plan), "svg")}
    return {"macro": draw(spec), "blocks": draw(spec, "blocks")}


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(catalog.templates_dir() / "gallery"),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def build_gallery(
    out: Path, sources: list[str] | None = None, *, title: str | None = None, plots: Path | None = None
) -> Path:
    """Write the gallery of ``sources`` (spec files or catalog names; the catalog when None) into
    ``out``: ``index.html``, ``style.css``, ``pages/``, ``svg/`` and ``src/``. Returns the index.
    A spec's page links the analysis figures in ``plots`` that name it (``resnet-gen analyze``)."""
    if title is None:
        title = "resnet-gen catalog" if sources is None else "resnet-gen gallery"
    sources = [str(path) for path in catalog.catalog_paths()] if sources is None else sources
    entries: list[_Entry] = []
    for source in sources:
        spec, report = load_with_report(source)
        entries.append(_Entry(spec, source, report, _parent(source)))
    entries.sort(key=lambda e: (e.spec.family, _natural_key(e.spec.name)))
    shown = {entry.spec.name: entry for entry in entries}
    for entry in entries:
        if entry.parent in shown:
            shown[entry.parent].children.append(entry.spec.name)
    env = _environment()
    # Everything is made before anything is written, so a failure leaves no gallery half-made.
    files: dict[Path, bytes] = {}
    for entry in entries:
        files.update(_spec_files(out, entry, shown, env, title, plots))
    families = sorted({entry.spec.family for entry in entries})
    cards = [
        {
            **_common(entry),
            "page": page_link(entry.spec.name),
            "macro": diagram_link(entry.spec.name),
            "text": f"{entry.spec.description} {entry.spec.family}",
        }
        for entry in entries
    ]
    files[out / "style.css"] = (catalog.templates_dir() / "gallery" / "style.css").read_bytes()
    index = out / "index.html"
    files[index] = env.get_template("index.html.j2").render(title=title, families=families, cards=cards).encode()
    output_folder(out)
    for path, data in files.items():  # checked first: one hand-written file stops the whole gallery
        check_replaceable(target_of(path), data)
    for path, data in files.items():
        write_output(path, data)
    return index


def _spec_files(
    out: Path, entry: _Entry, shown: dict[str, _Entry], env: jinja2.Environment, title: str, plots: Path | None
) -> dict[Path, bytes]:
    """The spec's diagrams, emitted source and page, by where they go."""
    spec, name = entry.spec, entry.spec.name
    drawings = _drawings(spec)
    code = (
        emit_unet(spec, spec_label(entry.source))
        if isinstance(spec, UNetSpec)
        else emit(spec, spec_label(entry.source))
    )
    ref = spec.reference
    size = spec.input.hw
    page = {
        **_common(entry),
        "input": f"{spec.input.channels}x{size[0]}x{size[1]}",
        "reference": ref.source + (f" ({ref.paper})" if ref.paper else "") if ref else "none",
        "parent": entry.parent,
        # A parent outside this gallery is named, not linked.
        "parent_page": f"{entry.parent}.html" if entry.parent in shown else None,
        "children": entry.children,
        "source": f"../{source_link(name)}",
        "macro": f"../{diagram_link(name)}",
        "blocks": f"../{diagram_link(name, 'blocks')}" if "blocks" in drawings else None,
        "rows": _stage_rows(entry.report),
        "code": code,
        "plots": plot_links(name, plots, (out / page_link(name)).parent),
    }
    return {
        **{out / diagram_link(name, view): data for view, data in drawings.items()},
        out / source_link(name): code.encode(),
        out / page_link(name): env.get_template("spec.html.j2").render(title=title, page=page).encode(),
    }
