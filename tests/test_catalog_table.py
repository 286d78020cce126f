"""The README's catalog table: generated from the specs, current, deterministic, torch-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

from resnet_gen import catalog
from resnet_gen.catalog_table import (
    END,
    START,
    catalog_rows,
    render_markdown,
    replace_marked_section,
)
from resnet_gen.errors import SpecError
from resnet_gen.reference_check import reference_mismatches
from resnet_gen.spec.model import ReferenceSpec


@pytest.fixture(scope="module")
def table() -> str:
    return render_markdown(catalog_rows())


def _marked(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0]


def test_readme_table_is_current(table: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _marked(readme) == "\n" + table, "README.md's catalog table is stale: run 'make readme'"


def test_table_has_one_row_per_shipped_spec_with_its_numbers(table: str) -> None:
    names = [line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:] if line.startswith("| `")]
    assert sorted(names) == catalog.catalog_names()
    row = next(line for line in table.splitlines() if line.startswith("| `cifar_resnet20` "))
    assert "| 269,722 | 40.55M |" in row and "| ✓ params, GMACs |" in row
    row = next(line for line in table.splitlines() if line.startswith("| `resnet50_d` "))
    assert "| 224x224 | 25,576,264 | 4.329G |" in row and "arxiv.org/abs/1812.01187" in row


def test_every_cited_number_is_reproduced() -> None:
    failing = {row.name: row.mismatches for row in catalog_rows() if row.mismatches}
    assert not failing


@pytest.mark.parametrize(
    ("params", "gmacs", "macs", "expected"),
    [
        (100, None, 0, []),
        (101, None, 0, ["params (reference 101)"]),
        (None, 4.089, 4_089_184_256, []),
        (None, 4.1, 4_089_184_256, []),  # published to one decimal
        (None, 4.08, 4_089_184_256, ["GMACs (reference 4.08)"]),
        (None, 0.04055, 40_551_040, []),
        (None, 0.0406, 40_551_040, []),
        (None, 0.04056, 40_551_040, ["GMACs (reference 0.04056)"]),
    ],
)
def test_reference_numbers_compare_to_the_published_digits(
    params: int | None, gmacs: float | None, macs: int, expected: list[str]
) -> None:
    reference = ReferenceSpec(source="test", params=params, gmacs=gmacs)
    assert reference_mismatches(reference, 100, macs) == expected


def test_replacing_the_marked_section_keeps_the_rest() -> None:
    text = f"intro\n{START}\nold\n{END}\noutro\n"
    assert replace_marked_section(text, "new\n", "README.md") == f"intro\n{START}\nnew\n{END}\noutro\n"
    for broken in ("no markers", f"{END}\n{START}\n", f"{START}\n{START}\n{END}\n"):
        with pytest.raises(SpecError, match=r"^README\.md: needs exactly one"):
            replace_marked_section(broken, "new\n", "README.md")


def _run(cli: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cli), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, check=False)


def test_cli_prints_and_updates_the_table(cli_path: Path, tmp_path: Path, table: str) -> None:
    printed = _run(cli_path, "list", "--markdown", cwd=tmp_path)
    assert printed.returncode == 0 and printed.stdout == table

    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{START}\nstale\n{END}\n\nmore\n", encoding="utf-8")
    first = _run(cli_path, "list", "--update", "README.md", cwd=tmp_path)
    assert first.returncode == 0 and "updated" in first.stdout
    written = readme.read_bytes()
    assert written == f"# title\n\n{START}\n{table}{END}\n\nmore\n".encode()
    again = _run(cli_path, "list", "--markdown", "--update", "README.md", cwd=tmp_path)
    assert again.returncode == 0 and "already up to date" in again.stdout
    assert readme.read_bytes() == written


def test_cli_refuses_bad_targets_without_traceback(cli_path: Path, tmp_path: Path) -> None:
    (tmp_path / "plain.md").write_text("no markers here\n", encoding="utf-8")
    missing = _run(cli_path, "list", "--update", "plain.md", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"error: plain.md: needs exactly one '{START}' line followed by one '{END}' line"
    ]
    assert (tmp_path / "plain.md").read_text(encoding="utf-8") == "no markers here\n"
    mixed = _run(cli_path, "list", "--family", "resnet", "--update", "plain.md", cwd=tmp_path)
    assert mixed.returncode == 2 and "Traceback" not in mixed.stderr


def test_rendering_the_table_does_not_import_torch() -> None:
    code = (
        "import sys; from resnet_gen.catalog_table import catalog_rows, render_markdown; "
        "render_markdown(catalog_rows()); assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
