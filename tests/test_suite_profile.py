"""RESNET_GEN_TEST_PROFILE (tests/conftest.py): one JSON line per test with its wall time, CPU time
and how far it raised the process's peak memory, the numbers README.md's Contributing section
ranks the suite by."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_profile_records_each_test(tmp_path: Path) -> None:
    log = tmp_path / "profile.jsonl"
    selected = [
        "tests/test_yaml_parsers.py::test_results_are_copies",
        "tests/test_catalog_table.py::test_replacing_the_marked_section_keeps_the_rest",
    ]
    env = {**os.environ, "RESNET_GEN_TEST_PROFILE": str(log)}
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selected],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [record["test"] for record in records] == selected
    for record in records:
        assert set(record) == {"test", "seconds", "cpu_seconds", "peak_mb", "peak_rise_mb"}
        assert record["seconds"] >= 0 and record["cpu_seconds"] >= 0
        assert record["peak_mb"] >= record["peak_rise_mb"] >= 0
        assert record["peak_mb"] > 10  # a Python process with the package loaded
