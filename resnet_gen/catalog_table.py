"""The catalog as a Markdown table: every shipped spec with its params, MACs and reference.

The README carries this table between ``<!-- catalog:start -->`` and ``<!-- catalog:end -->``;
``resnet-gen list --markdown --update README.md`` (``make readme``) regenerates it, so the
numbers there are always computed, never typed. Pure Python: no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import catalog, marked_section
from .layout_dispatch import load_with_report
from .reference_check import reference_checks, reference_mismatches
from .spec.model import ReferenceSpec

START = "<!-- catalog:start -->"
END = "<!-- catalog:end -->"


@dataclass(frozen=True)
class CatalogRow:
    name: str
    family: str
    input_size: tuple[int, int]
    params: int
    macs: int
    reference: ReferenceSpec | None

    @property
    def mismatches(self) -> list[str]:
        """The reference numbers this spec does not reproduce (empty when all match or none are cited)."""
        return reference_mismatches(self.reference, self.params, self.macs)


def _natural_key(name: str) -> tuple[object, ...]:
    """``cifar_resnet20`` before ``cifar_resnet110``: digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def catalog_rows(family: str | None = None) -> list[CatalogRow]:
    """One row per shipped spec (optionally one family), grouped by family, in natural name order."""
    rows = []
    for name in catalog.catalog_names():
        spec, report = load_with_report(name)
        if family is not None and spec.family != family:
            continue
        rows.append(CatalogRow(spec.name, spec.family, spec.input.hw, report.params, report.macs, spec.reference))
    return sorted(rows, key=lambda row: (row.family, _natural_key(row.name)))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _reference_cell(reference: ReferenceSpec | None) -> str:
    if reference is None:
        return ""
    text = _cell(reference.source)
    paper = reference.paper
    if paper:
        arxiv = re.fullmatch(r"arXiv:(\d{4}\.\d{4,5})", paper)
        text += f" ([{paper}](https://arxiv.org/abs/{arxiv.group(1)}))" if arxiv else f" ({_cell(paper)})"
    return text


def _verdict(row: CatalogRow) -> str:
    checks = reference_checks(row.reference, row.params, row.macs)
    if not checks:
        return "no numbers"
    if row.mismatches:
        return "✗ " + ", ".join(row.mismatches)
    return "✓ " + ", ".join(label for label, _, _ in checks)


def _macs(macs: int) -> str:
    # Small CIFAR nets read best in millions, the rest in billions (as their papers print them).
    return f"{macs / 1e6:.2f}M" if macs < 1e9 else f"{macs / 1e9:.3f}G"


def render_markdown(rows: list[CatalogRow]) -> str:
    """The table and a one-line summary, ending in a newline."""
    lines = [
        "| name | family | input | params | MACs | reference | reproduces |",
        "|---|---|---|--:|--:|---|---|",
    ]
    for row in rows:
        height, width = row.input_size
        lines.append(
            f"| `{row.name}` | {_cell(row.family)} | {height}x{width} | {row.params:,} | {_macs(row.macs)} "
            f"| {_reference_cell(row.reference)} | {_verdict(row)} |"
        )
    cited = [row for row in rows if row.reference is not None and _verdict(row) != "no numbers"]
    failing = [row for row in cited if row.mismatches]
    summary = f"{len(rows)} specs; {len(cited)} cite published numbers"
    summary += f", {len(failing)} of them not reproduced." if failing else ", all reproduced."
    lines += ["", summary, ""]
    return "\n".join(lines)


def replace_marked_section(text: str, table: str, source: str) -> str:
    """``text`` with everything between the catalog markers replaced by ``table``."""
    return marked_section.replace_marked_section(text, table, source, START, END)


def update_file(path: Path, table: str) -> bool:
    """Rewrite the catalog section of ``path`` in place; returns whether anything changed."""
    return marked_section.update_marked_file(path, table, START, END)
