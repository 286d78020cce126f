"""Shared test helpers: the catalog, torch-side counting, and weight randomisation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from resnet_gen import catalog

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ALL_SPECS = catalog.catalog_names()


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
