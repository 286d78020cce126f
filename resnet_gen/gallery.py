"""A static, self-contained web page of the catalog: diagram, per-stage table, reference check, parent.

No server, no network, no framework: one ``index.html``, one SVG and one emitted source file per
spec, and a few lines of plain JavaScript for the family filter and the search box (``?q=`` and
``?family=`` preset them). Every link stays inside the written folder, so it can be moved or
published as it is.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from . import catalog
from .analysis import analyze
from .catalog_table import _natural_key, reference_mismatches
from .diagram import draw
from .emit import emit
from .emit.command import spec_label
from .files import write_bytes_atomic, write_text_atomic
from .spec import Spec, load_spec
from .spec.yaml_source import read_yaml_file

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
header{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc}
section.spec{border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.5em 1em;display:flex;gap:1.5em}
section.spec img{max-height:420px;max-width:260px}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
section.spec[hidden]{display:none}
.ok{color:#17702a}.bad{color:#b00020}.none{color:#777}
"""

_SCRIPT = """
const q=document.getElementById('q'),fam=document.getElementById('family'),count=document.getElementById('count');
function apply(){const t=q.value.trim().toLowerCase(),f=fam.value;let n=0;
for(const s of document.querySelectorAll('section.spec')){
const show=(!f||s.dataset.family===f)&&(!t||s.dataset.search.includes(t));s.hidden=!show;if(show)n++;}
count.textContent=n+' shown';}
const params=new URLSearchParams(location.search);q.value=params.get('q')||'';fam.value=params.get('family')||'';
q.addEventListener('input',apply);fam.addEventListener('change',apply);apply();
// How many diagrams decoded, for a quick check in a headless browser.
addEventListener('load',()=>{document.body.dataset.diagramsLoaded=
[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length;});
"""


def _status(spec: Spec, params: int, macs: int) -> tuple[str, str]:
    """(css class, text): whether the cited reference numbers are reproduced."""
    ref = spec.reference
    if ref is None or (ref.params is None and ref.gmacs is None):
        return "none", "no reference numbers"
    problems = reference_mismatches(ref, params, macs)
    if problems:
        return "bad", "differs: " + ", ".join(problems)
    checked = [label for label, value in (("params", ref.params), ("GMACs", ref.gmacs)) if value is not None]
    return "ok", "reproduced: " + ", ".join(checked)


def _parent(name: str) -> str | None:
    data = read_yaml_file(catalog.catalog_path(name), name).data
    parent = data.get("extends")
    return parent if isinstance(parent, str) else None


def source_link(name: str) -> str:
    """Where a card links to the spec's emitted source, relative to ``index.html``."""
    return f"src/{name}.py"


def plot_links(name: str, plots: Path | None, out: Path) -> list[tuple[str, str]]:
    """(label, href relative to the page) of each figure in ``plots`` that names the spec: the
    analyses write ``<analysis>-<spec>[-<spec>...].png``."""
    if plots is None or not plots.is_dir():
        return []
    found = []
    for figure in sorted(plots.glob("*.png")):
        analysis, *specs = figure.stem.split("-")
        if name in specs:
            found.append((analysis, Path(os.path.relpath(figure, out)).as_posix()))
    return found


def _section(spec: Spec, parent: str | None, shown: set[str], plots: list[tuple[str, str]]) -> str:
    report = analyze(spec)
    esc = html.escape
    css, status = _status(spec, report.params, report.macs)
    rows = "".join(
        f"<tr><td>{esc(r.name)}</td><td>{'-' if r.output_size is None else f'{r.output_size[0]}x{r.output_size[1]}'}"
        f"</td><td>{r.channels}</td><td>{r.blocks or ''}</td><td>{r.params:,}</td><td>{r.macs / 1e6:,.2f}M</td></tr>"
        for r in report.rows
    )
    ref = spec.reference
    reference = esc(ref.source + (f" ({ref.paper})" if ref.paper else "")) if ref else "none"
    # A parent outside this page (a gallery of a few specs) is named, not linked.
    parent_html = (
        (f'<a href="#{esc(parent)}">{esc(parent)}</a>' if parent in shown else esc(parent)) if parent else "none"
    )
    figures = "".join(f' &middot; <a class="plot" href="{esc(href)}">{esc(label)}</a>' for label, href in plots)
    search = " ".join([spec.name, spec.family, spec.description, parent or ""]).lower()
    return f"""<section class="spec" id="{esc(spec.name)}" data-family="{esc(spec.family)}" data-search="{esc(search)}">
<img src="svg/{esc(spec.name)}.svg" alt="{esc(spec.name)} macro diagram">
<div><h2>{esc(spec.name)}</h2><p>{esc(spec.description)}</p>
<p>family: {esc(spec.family)} &middot; parent: {parent_html} &middot;
<a href="{esc(source_link(spec.name))}">emitted source</a>{figures}</p>
<p>params {report.params:,} &middot; {report.macs / 1e9:.3f} GMACs &middot; reference: {reference}
&middot; <span class="{css}">{esc(status)}</span></p>
<table><tr><th>stage</th><th>output</th><th>channels</th><th>blocks</th><th>params</th><th>MACs</th></tr>{rows}</table>
</div></section>"""


def build_gallery(out: Path, names: list[str] | None = None, plots: Path | None = None) -> Path:
    """Write ``out/index.html``, ``out/svg/<name>.svg`` and ``out/src/<name>.py`` (what
    ``resnet-gen build`` writes for that spec); returns the page's path. A card links the
    analysis figures in ``plots`` that name its spec (``resnet-gen analyze ...``), if any."""
    names = sorted(names if names is not None else catalog.catalog_names(), key=_natural_key)
    specs = [load_spec(name) for name in names]
    specs.sort(key=lambda s: (s.family, _natural_key(s.name)))
    for spec in specs:
        write_bytes_atomic(out / "svg" / f"{spec.name}.svg", draw(spec))
        write_text_atomic(out / source_link(spec.name), emit(spec, spec_label(catalog.catalog_path(spec.name))))
    families = sorted({s.family for s in specs})
    options = "".join(f'<option value="{html.escape(f)}">{html.escape(f)}</option>' for f in families)
    shown = {spec.name for spec in specs}
    body = "\n".join(_section(spec, _parent(spec.name), shown, plot_links(spec.name, plots, out)) for spec in specs)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>resnet-gen catalog</title><style>{_STYLE}</style></head>
<body><header><h1>resnet-gen catalog</h1>
<input id="q" type="search" placeholder="search name, family, description">
<select id="family"><option value="">all families</option>{options}</select> <span id="count"></span></header>
<main>
{body}
</main><script>{_SCRIPT}</script></body></html>
"""
    index = out / "index.html"
    write_text_atomic(index, page)
    return index
