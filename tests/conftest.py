"""Shared test helpers: the catalog, torch-side counting, and weight randomisation."""

from __future__ import annotations

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


def cli_env() -> dict[str, str]:
    """Environment for running the console script in a subprocess."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def cli_path() -> Path:
    return VENV_BIN / "resnet-gen"


def pytest_configure(config: pytest.Config) -> None:
    # Each xdist worker gets one core: torch's own threads would only fight over the same cores.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


# --- the quick loop (make test-quick) ------------------------------------------------------------
# `pytest --quick` runs every test once on a sample of the catalog: each family's smallest network
# stands for the family in tests parametrized over specs, and the tests that cost minutes each
# (benchmarks, wheel building, the README walk-through, inductor's C++ compile) are left for the
# full run. Left-out tests are deselected and counted, never skipped; `make test` runs them all.
QUICK_LEAVES_OUT = {
    "test_bench_smoke.py": None,
    "test_packaging.py": None,
    "test_readme.py": None,
    "test_emit_standalone.py": "inductor",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quick", action="store_true", help="A few minutes: each family's smallest spec, no minute-long tests."
    )


QUICK_MAX_PARAMS = 30_000_000  # a family whose smallest net is bigger (senet154) waits for the full run


def quick_sample() -> set[str]:
    """Each family's smallest shipped spec (by parameters, then name), up to QUICK_MAX_PARAMS."""
    from resnet_gen.unet.dispatch import load_with_report

    smallest: dict[str, tuple[int, str]] = {}
    for name in ALL_SPECS:
        spec, report = load_with_report(name)
        key = (report.params, name)
        smallest[spec.family] = min(smallest.get(spec.family, key), key)
    return {name for params, name in smallest.values() if params <= QUICK_MAX_PARAMS}


def _left_out_of_quick(item: pytest.Item, sample: set[str], catalog_names: set[str]) -> bool:
    if item.get_closest_marker("slow") is not None:
        return True
    module = Path(str(item.fspath)).name
    if module in QUICK_LEAVES_OUT:
        word = QUICK_LEAVES_OUT[module]
        if word is None or word in item.nodeid:
            return True
    callspec = getattr(item, "callspec", None)
    specs = {v for v in (callspec.params.values() if callspec else ()) if isinstance(v, str) and v in catalog_names}
    return bool(specs) and not specs & sample


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--quick"):
        return
    sample, names = quick_sample(), set(ALL_SPECS)
    kept, left = [], []
    for item in items:
        (left if _left_out_of_quick(item, sample, names) else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept
