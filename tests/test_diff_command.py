"""resnet-gen diff: changed fields and per-stage numbers, checked against analyze() of each side."""

from __future__ import annotations

from click.testing import CliRunner

from resnet_gen import analyze, load_spec
from resnet_gen.cli import cli
from resnet_gen.compare import ABSENT, field_changes, format_delta


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
    assert all(cells[-1] == "+0 (+0.0%)" for cells in rows.values())


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
        assert cells[7].startswith(f"{b.macs - a.macs:+,} (")
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
