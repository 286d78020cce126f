"""Shared test helpers: the catalog, torch-side counting, and weight randomisation."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

from resnet_gen import catalog
from resnet_gen.unet import is_unet

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ALL_SPECS = catalog.catalog_names()
# The diffusion U-Nets (layout: unet) and the classifiers: tests of what only one layout has
# (batch-norm folding, timm and torchvision parity, a head) take their own list.
UNET_SPECS = [name for name in ALL_SPECS if is_unet(name)]
CLASSIFIER_SPECS = [name for name in ALL_SPECS if name not in UNET_SPECS]


@functools.cache
def solved_at_run_time(name: str) -> bool:
    """Whether a catalog spec has a Neural-ODE block whose adaptive solver picks its steps at run
    time: its report counts one function evaluation, and a forward needs real tensors."""
    import resnet_gen as rg

    spec = rg.load_spec(name)
    return any(getattr(spec.block_for(index), "evaluations", 0) is None for index in range(len(spec.stages)))


def cli_env() -> dict[str, str]:
    """Environment for running the console script in a subprocess."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def cli_path() -> Path:
    return VENV_BIN / "resnet-gen"


def pytest_configure(config: pytest.Config) -> None:
    # validate's record of passes (resnet_gen/cli/validate_cache.py) stays off, so that no test
    # writes under the home folder or reads what another run left; tests/test_validate_cache.py
    # turns it on in a folder of its own. The processes a test starts inherit the setting.
    os.environ["RESNET_GEN_CACHE"] = "off"
    # Each xdist worker gets one core: torch's own threads would only fight over the same cores
    # (OpenMP threads spin while they wait, burning the other worker's core). The processes a test
    # starts (the CLI, the benchmark, the README's examples) inherit the setting.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)


# --- the quick loop (make test-quick) ------------------------------------------------------------
# `pytest --quick` runs every test function at least once on a sample of the catalog: each
# family's smallest network stands for the family in tests parametrized over specs (a function
# none of whose cases uses a sampled spec runs its first case), and the tests that cost minutes
# each (the benchmark runs, the README walk-through, inductor's C++ compile, and every test marked
# slow, such as the BiT giants) are left for the full run. Every test file still contributes: a
# file all of whose tests would be left out runs its first (test_packaging.py's one wheel build).
# Left-out tests are deselected and counted, never skipped; `make test` runs them all.
QUICK_LEAVES_OUT = {
    "test_bench_smoke.py": ("test_quick_benchmark_prints_every_table", "test_gpu_script_runs_on_the_cpu"),
    "test_emit_standalone.py": ("inductor",),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quick", action="store_true", help="A few minutes: each family's smallest spec, no minute-long tests."
    )


QUICK_MAX_PARAMS = 30_000_000  # a family whose smallest net is bigger (senet154) waits for the full run


def quick_sample() -> set[str]:
    """Each family's smallest shipped spec (by parameters, then name), up to QUICK_MAX_PARAMS."""
    from resnet_gen.layout_dispatch import load_with_report

    smallest: dict[str, tuple[int, str]] = {}
    for name in ALL_SPECS:
        spec, report = load_with_report(name)
        key = (report.params, name)
        smallest[spec.family] = min(smallest.get(spec.family, key), key)
    return {name for params, name in smallest.values() if params <= QUICK_MAX_PARAMS}


def _quick_verdict(item: pytest.Item, sample: set[str], catalog_names: set[str]) -> str:
    """``keep``; ``long`` (left for the full run); or ``unsampled`` (its specs are not in the sample)."""
    if item.get_closest_marker("slow") is not None:
        return "long"
    module = Path(str(item.fspath)).name
    if any(word in item.nodeid for word in QUICK_LEAVES_OUT.get(module, ())):
        return "long"
    callspec = getattr(item, "callspec", None)
    specs = {v for v in (callspec.params.values() if callspec else ()) if isinstance(v, str) and v in catalog_names}
    return "unsampled" if specs and not specs & sample else "keep"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--quick"):
        return
    sample, names = quick_sample(), set(ALL_SPECS)
    verdicts = [_quick_verdict(item, sample, names) for item in items]
    functions = [f"{item.path}::{getattr(item, 'originalname', item.name)}" for item in items]
    running = {function for function, verdict in zip(functions, verdicts, strict=True) if verdict == "keep"}
    files = {item.path for item, verdict in zip(items, verdicts, strict=True) if verdict == "keep"}
    kept, left = [], []
    for item, function, verdict in zip(items, functions, verdicts, strict=True):
        if verdict == "unsampled" and function not in running:
            running.add(function)  # the function's first case stands for it
            verdict = "keep"
        if item.path not in files:
            files.add(item.path)  # a file's first test stands for it
            verdict = "keep"
        (kept if verdict == "keep" else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


# --- where the suite's time and memory go (RESNET_GEN_TEST_PROFILE=file.jsonl) --------------------
# One JSON line per test: its wall time (setup, call and teardown) and how far it raised the
# process's peak resident memory. See README.md, "Contributing", for how the suite is kept fast.
_PROFILE_PATH = os.environ.get("RESNET_GEN_TEST_PROFILE")


if _PROFILE_PATH:
    import json
    import resource
    import time

    def _cpu_seconds() -> float:
        """User and system time of this process and of the subprocesses it has waited for."""
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        yield
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        record = {
            "test": item.nodeid,
            "seconds": round(time.perf_counter() - start, 3),
            "cpu_seconds": round(_cpu_seconds() - cpu_start, 3),
            "peak_mb": round(peak / 1024, 1),
            "peak_rise_mb": round((peak - peak_before) / 1024, 1),
        }
        with open(_PROFILE_PATH, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
