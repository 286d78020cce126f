"""resnet-gen diff: changed fields and per-stage numbers, checked against analyze() of each side, and
the --diagram drawing, read back through Graphviz and from the SVG."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import graphviz
import pytest
from click.testing import CliRunner
from conftest import ROOT, VENV_BIN, cli_env
from diagram_parse import Parsed, parse

from resnet_gen import analyze, load_spec
from resnet_gen.cli import cli
from resnet_gen.compare import ABSENT, field_changes, format_delta, stage_deltas
from resnet_gen.diagram import style
from resnet_gen.diagram.macro import macro_view
from resnet_gen.diagram.output import dot_digest, svg_stamp
from resnet_gen.plan import lower


def _diff(a: str, b: str) -> str:
    result = CliRunner().invoke(cli, ["diff", a, b])
    assert result.exit_code == 0, result.output
    return result.output


def _table_rows(output: str) -> dict[str, list[str]]:
    """Stage name (without the change mark) -> cells split on runs of two spaces."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("stage ")) + 2
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        rows[cells[0].rstrip("*")] = cells
    return rows


def test_same_spec_has_no_differences() -> None:
    output = _diff("resnet50", "resnet50")
    assert "(no resolved field differs)" in output
    rows = _table_rows(output)
    assert [r.name for r in analyze(load_spec("resnet50")).rows] + ["total"] == list(rows)
    assert not any(cells[0].endswith("*") for cells in rows.values())
    assert all(cells[-4] == "+0 (+0.0%)" and cells[-1] == "+0.00M (+0.0%)" for cells in rows.values())


def test_a_variant_lists_only_the_fields_its_author_changed(tmp_path: Path) -> None:
    """References, names and descriptions are never inherited, so they differ for every variant
    and are no change of the user's: only the edited fields are listed."""
    variant = tmp_path / "mine.yaml"
    variant.write_text("extends: resnet50\ndescription: Mine.\nblock: {width_per_group: 128}\n")
    output = _diff("resnet50", str(variant))
    fields = output.split("fields:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert fields == ["  block.width_per_group: 64 -> 128"]
    assert "reference" not in output.split("stage ", 1)[0]


def test_se_variant_fields_and_stage_numbers() -> None:
    old, new = load_spec("resnet50"), load_spec("seresnet50")
    changes = {path: (a, b) for path, a, b in field_changes(old, new)}
    assert changes["family"] == ("resnet", "se_resnet")
    assert changes["init.zero_init_residual"] == (False, True)
    assert changes["block.attention"][0] is None and changes["block.attention"][1]["type"] == "se"
    assert not any(path.startswith(("stages", "stem", "name", "description")) for path in changes)

    output = _diff("resnet50", "seresnet50")
    assert 'family: "resnet" -> "se_resnet"' in output
    rows = _table_rows(output)
    old_report, new_report = analyze(old), analyze(new)
    for a, b in zip(old_report.rows, new_report.rows, strict=True):
        cells = rows[a.name]
        assert cells[2] == f"{a.params:,}" and cells[3] == f"{b.params:,}"
        change = b.params - a.params
        assert cells[4] == (f"{change:+,} ({100 * change / a.params:+.1f}%)")
        assert cells[7].startswith(f"{(b.macs - a.macs) / 1e6:+,.2f}M (")  # in millions, as the MACs columns
        # SE only touches the residual stages.
        assert rows[a.name][0].endswith("*") == a.name.startswith("layer")
    total = rows["total"]
    assert total[1] == f"{old_report.params:,}" and total[2] == f"{new_report.params:,}"
    assert total[3] == f"{new_report.params - old_report.params:+,} (+9.9%)"  # 28,088,024 / 25,557,032


def test_stage_only_on_one_side_and_shapes() -> None:
    old, new = load_spec("resnet18"), load_spec("cifar_resnet20")
    changes = {path: (a, b) for path, a, b in field_changes(old, new)}
    assert changes["stages[3]"][1] is ABSENT
    assert changes["stages[0].width"] == (64, 16)
    assert changes["head.num_classes"] == (1000, 10)
    rows = _table_rows(_diff("resnet18", "cifar_resnet20"))
    layer4 = next(r for r in analyze(old).rows if r.name == "layer4")
    assert rows["layer4"][1] == "7x7 -> -"
    assert rows["layer4"][3] == "-"
    assert rows["layer4"][4] == f"{-layer4.params:+,} (-100.0%)"
    assert rows["stem"][1] == "56x56 -> 32x32"


def test_format_delta() -> None:
    assert format_delta(200, 250) == "+50 (+25.0%)"
    assert format_delta(1000, 0) == "-1,000 (-100.0%)"
    assert format_delta(0, 7) == "+7"
    assert format_delta(0, 0) == "0"


# --- diff --diagram: both macro views side by side, the changed stages highlighted ---------------


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script as a user runs it: real exit codes and stderr."""
    return subprocess.run(
        [str(VENV_BIN / "resnet-gen"), *args], cwd=cwd, env=env or cli_env(), capture_output=True, text=True
    )


def _draw(a: str, b: str, path: Path) -> str:
    result = CliRunner().invoke(cli, ["diff", a, b, "--diagram", str(path)])
    assert result.exit_code == 0, result.output
    assert path.is_file()
    return result.output


def _expected(a: str, b: str) -> dict[str, set[str]]:
    """What each side should highlight: the changed rows of compare.stage_deltas that side has."""
    deltas = stage_deltas(analyze(load_spec(a)), analyze(load_spec(b)))
    return {
        "old": {d.name for d in deltas if d.changed and d.old is not None},
        "new": {d.name for d in deltas if d.changed and d.new is not None},
    }


def _highlighted_in_dot(parsed: Parsed) -> dict[str, set[str]]:
    """Stage clusters, stem and head nodes drawn in the highlight fill, by side, as Graphviz read them."""
    out: dict[str, set[str]] = {"old": set(), "new": set()}
    for name, attrs in parsed.cluster_attrs.items():
        if attrs.get("fillcolor") == style.CHANGED_FILL:
            side, stage = name.removeprefix("cluster_").split("/", 1)
            out[side].add(stage)
    for node in parsed.nodes.values():
        if node.attrs.get("fillcolor") == style.CHANGED_FILL:
            side, part = node.name.split("/", 1)
            out[side].add(part)
    return out


def _highlighted_in_svg(svg: bytes) -> dict[str, set[str]]:
    """The same read from the SVG a viewer shows: groups whose outline is filled with the highlight."""
    ns = {"svg": "http://www.w3.org/2000/svg"}
    out: dict[str, set[str]] = {"old": set(), "new": set()}
    for group in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}g"):
        title = group.find("svg:title", ns)
        shape = group.find("svg:path", ns)
        if shape is None:
            shape = group.find("svg:polygon", ns)
        if title is None or title.text is None or shape is None or shape.get("fill") != style.CHANGED_FILL:
            continue
        side, part = title.text.removeprefix("cluster_").split("/", 1)
        out[side].add(part)
    return out


@pytest.mark.parametrize(
    ("a", "b", "changed"),
    [
        # He et al. 2015, Table 1: ResNet-101 is ResNet-50 with 23 instead of 6 blocks in conv4_x.
        ("resnet50", "resnet101", {"layer3"}),
        # Zagoruyko & Komodakis: a wide ResNet doubles every bottleneck's inner width, nothing else.
        ("resnet50", "wide_resnet50_2", {"layer1", "layer2", "layer3", "layer4"}),
    ],
)
def test_diagram_highlights_exactly_the_changed_stages(a: str, b: str, changed: set[str], tmp_path: Path) -> None:
    assert _expected(a, b) == {"old": changed, "new": changed}
    output = _draw(a, b, tmp_path / "diff.dot")
    assert f"wrote {tmp_path / 'diff.dot'}" in output
    assert {cells[0].rstrip("*") for cells in _table_rows(output).values() if cells[0].endswith("*")} == changed
    parsed = parse(graphviz.Source((tmp_path / "diff.dot").read_text()))
    assert _highlighted_in_dot(parsed) == {"old": changed, "new": changed}
    _draw(a, b, tmp_path / "diff.svg")
    assert _highlighted_in_svg((tmp_path / "diff.svg").read_bytes()) == {"old": changed, "new": changed}
    # The legend says what the colour means and how many parts carry it.
    assert "changed: shape, channels, blocks, params, MACs or layers differ" in parsed.title
    assert f"{len(changed)} part{'s' if len(changed) > 1 else ''} differ" in parsed.title


def test_diagram_sides_are_the_two_macro_views_old_on_the_left(tmp_path: Path) -> None:
    _draw("resnet18", "cifar_resnet20", tmp_path / "diff.dot")
    parsed = parse(graphviz.Source((tmp_path / "diff.dot").read_text()))
    for side, name in (("old", "resnet18"), ("new", "cifar_resnet20")):
        alone = parse(macro_view(lower(load_spec(name))))
        assert set(parsed.clusters[f"cluster_{side}"]) == {f"{side}/{node}" for node in alone.nodes}
        assert parsed.cluster_text(f"cluster_{side}") == alone.title
        ours = {(e.tail, e.head, e.attrs.get("label")) for e in parsed.edges if e.attrs.get("style") != "invis"}
        theirs = {(f"{side}/{e.tail}", f"{side}/{e.head}", e.attrs.get("label")) for e in alone.edges}
        assert theirs <= ours
    left = [float(v) for v in parsed.cluster_attrs["cluster_old"]["bb"].split(",")]
    right = [float(v) for v in parsed.cluster_attrs["cluster_new"]["bb"].split(",")]
    assert left[2] < right[0]
    # A stage only one side has (layer4) is highlighted on that side; stem and head differ too.
    assert _highlighted_in_dot(parsed) == _expected("resnet18", "cifar_resnet20")
    assert _highlighted_in_dot(parsed)["old"] == {"stem", "layer1", "layer2", "layer3", "layer4", "head"}


def test_diagram_of_identical_specs_highlights_nothing(tmp_path: Path) -> None:
    _draw("resnet50", "resnet50", tmp_path / "same.svg")
    svg = (tmp_path / "same.svg").read_bytes()
    assert _highlighted_in_svg(svg) == {"old": set(), "new": set()}
    assert style.CHANGED_FILL.encode() not in svg and style.CHANGED_BORDER.encode() in svg  # the legend's swatch
    _draw("resnet50", "resnet50", tmp_path / "same.dot")
    parsed = parse(graphviz.Source((tmp_path / "same.dot").read_text()))
    assert _highlighted_in_dot(parsed) == {"old": set(), "new": set()}
    assert "nothing differs" in parsed.title


def test_diagram_is_byte_identical_across_runs(tmp_path: Path) -> None:
    for seed, folder in (("1", tmp_path / "a"), ("2", tmp_path / "b")):
        env = {**cli_env(), "PYTHONHASHSEED": seed}
        for fmt in ("svg", "pdf", "dot"):
            done = _cli(["diff", "resnet50", "seresnet50", "--diagram", str(folder / f"d.{fmt}")], tmp_path, env)
            assert done.returncode == 0, done.stderr
    for fmt in ("svg", "pdf", "dot"):
        first = (tmp_path / "a" / f"d.{fmt}").read_bytes()
        assert first == (tmp_path / "b" / f"d.{fmt}").read_bytes(), fmt
    svg, dot = (tmp_path / "a" / "d.svg").read_bytes(), (tmp_path / "a" / "d.dot").read_text()
    assert svg_stamp(svg) == dot_digest(dot)  # the SVG records the DOT it was drawn from
    assert (tmp_path / "a" / "d.pdf").read_bytes().startswith(b"%PDF-")


def test_diagram_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from resnet_gen.cli import main\n"
        f"main(['diff', 'resnet50', 'wide_resnet50_2', '--diagram', {str(tmp_path / 'd.svg')!r}])\n"
        "loaded = sorted(name for name in sys.modules if name == 'torch' or name.startswith('torch.'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d.svg").read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["resnet50", "no_such_spec", "--diagram", "out/d.svg"], 1, "error: no_such_spec: no spec file"),
        (["resnet50", "resnet101", "--diagram", "out/d.txt"], 2, "must end in one of .svg, .png, .pdf, .dot"),
        (["resnet50", "resnet101", "--diagram", "out/d"], 2, "(got no suffix)"),
        (["resnet50", "resnet101", "--diagram", "blocker/d.svg"], 1, "error: blocker: is a file, not a folder"),
        (["resnet50", "resnet101", "--diagram", "out"], 2, "is a directory"),
    ],
)
def test_diagram_bad_input_is_one_line_and_writes_nothing(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "blocker").write_text("a file where a folder is expected\n")
    done = _cli(["diff", *args], tmp_path)
    assert done.returncode == code, done.stderr
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["blocker", "out"]


def test_diagram_without_graphviz(tmp_path: Path) -> None:
    env = {**cli_env(), "PATH": str(VENV_BIN)}
    assert shutil.which("dot", path=env["PATH"]) is None
    done = _cli(["diff", "resnet50", "resnet101", "--diagram", "d.svg"], tmp_path, env)
    assert done.returncode == 1 and done.stderr.startswith("error: Graphviz's 'dot' program was not found")
    assert len(done.stderr.splitlines()) == 1 and not (tmp_path / "d.svg").exists()
    done = _cli(["diff", "resnet50", "resnet101", "--diagram", "d.dot"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d.dot").read_text().startswith("digraph diff {")
