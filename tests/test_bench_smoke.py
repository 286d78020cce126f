"""The benchmark's quick mode runs end to end and prints its tables (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATIO = re.compile(r"(\d+\.\d{3}) \((\d+\.\d{3})-(\d+\.\d{3})\)")


def test_quick_benchmark_prints_every_table() -> None:
    tiny = ["--reps", "1", "--warmup", "0", "--scale-specs", "cifar_resnet20", "--depths", "20,32"]
    tiny += ["--nets", "resnet50", "--batch", "2", "--image-size", "64"]
    tiny += ["--deploy-nets", "cifar_resnet20", "--deploy-batches", "2"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    headings = ("## Tool latency", "## Scale: in-process", "## Scale growth", "## Network speed", "## Inference")
    for heading in (*headings, "## Trainer throughput", "## Deployment"):
        assert heading in out
    lines = out.splitlines()

    def row(*cells: str) -> str:
        found = [line for line in lines if all(cell in line for cell in cells)]
        assert len(found) == 1, (cells, out)
        return found[0]

    # The reference divided by itself, so exactly 1 whatever the timings.
    assert "1.000 (1.000-1.000)" in row('python -c "import torch"')
    for command in ("resnet-gen build specs/resnet152.yaml", "templates compiled afresh", "resnet-gen info"):
        assert RATIO.search(row(command))
    for run in ("), --no-cache", "one process", "again"):
        assert RATIO.search(row("resnet-gen validate specs/*.yaml", run))
    for step in ("validate+analyse", "emit", "diagram", "live build"):
        assert row("cifar_resnet20 ", step)
    assert row("cifar_resnet32", "15")  # (32 - 2) / 2 blocks
    for mode in ("eval forward", "train step"):
        for ours in ("live", "emitted"):
            match = RATIO.search(row("resnet50", mode, ours))
            assert match is not None
            median, low, high = map(float, match.groups())
            assert 0 < low <= median <= high
    assert RATIO.search(row("resnet-gen train")) and "1.000 (1.000-1.000)" in row("bare loop ")
    # Each table once in a quick run: the inference section with glibc's default heap only (the
    # full run adds a second one with a warm heap).
    starts = [i for i, line in enumerate(lines) if line.startswith("## Inference")]
    heaps = ["default heap"]
    assert len([line for line in lines if line.startswith("## ")]) == len(
        set(line for line in lines if line.startswith("## "))
    )
    assert [next(h for h in heaps if h in lines[i]) for i in starts] == heaps
    for start in starts:
        found = next(line for line in lines[start:] if line.startswith("resnet50 "))
        match = RATIO.search(found)
        assert match is not None
        assert float(found.split()[-2 if found.endswith("ok") else -3]) < 1e-4  # outputs agree
    # The deployment section, twice as well; every contender's outputs near the eager reference's.
    starts = [i for i, line in enumerate(lines) if line.startswith("## Deployment")]
    assert len(starts) == len(heaps)
    contenders = ["torch eager (reference)", "ONNX Runtime, reference export", "inference form"]
    contenders += ["inference form + fuse_for_cpu", "inference form + freeze_for_cpu"]
    contenders += ["ONNX Runtime, inference-form export", "int8 form", "int8 form + freeze_int8"]
    for start in starts:
        found = [line for line in lines[start:] if line.startswith("cifar_resnet20 ")][: len(contenders)]
        for contender, line in zip(contenders, found, strict=True):
            assert f" {contender} " in line
            assert len(RATIO.findall(line)) == 3  # against torch eager, ONNX Runtime and freeze_for_cpu
            assert float(line.split()[-1]) < (0.1 if contender.startswith("int8 form") else 1e-4)


def test_an_unknown_section_is_a_usage_error() -> None:
    """--only picks sections; a name that is not one is a one-line usage error."""
    bench = [sys.executable, str(ROOT / "benchmarks" / "bench.py")]
    result = subprocess.run([*bench, "--only", "tool,netwrk"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown section netwrk" in result.stderr


def test_gpu_script_runs_on_the_cpu(tmp_path: Path) -> None:
    """benchmarks/gpu.py's code path (train steps, inference, the inference form), smoke-run on the
    CPU since no GPU is required anywhere; its numbers are not looked at."""
    tiny = ["--device", "cpu", "--no-compile", "--batches", "2", "--image-size", "32"]
    tiny += ["--steps", "1", "--rounds", "1", "--warmup", "0", "--output", str(tmp_path / "gpu.md")]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("resnet50 ")]
    assert [row[1:5] for row in rows] == [
        ["2", "train", "eager", "timm"],
        ["2", "train", "eager", "emitted"],
        ["2", "inference", "eager", "inference"],
    ]
    written = (tmp_path / "gpu.md").read_text(encoding="utf-8")
    assert "# device: CPU (smoke run), torch " in written and "## GPU throughput" in written
    assert all(" ".join(row) in " ".join(written.split()) for row in rows)
