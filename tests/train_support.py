"""Helpers for the training tests: small specs, a quiet CLI call, checkpoint weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import resnet_gen as rg
from resnet_gen.cli import main

# cifar_resnet20 at digits' 8x8 greyscale images, and a resnet18 at a small RGB input.
DIGITS_NET = ["input.channels=1", "input.size=8"]
SMALL_RESNET18 = ["input.size=16", "head.num_classes=10"]


def digits_spec(extra: list[str] | None = None) -> rg.Spec:
    return rg.load_spec("cifar_resnet20", DIGITS_NET + (extra or []))


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``resnet-gen ARGS`` in this process: exit status, stdout, stderr."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_thread_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_module(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh process with one torch thread (the machine's cores are shared)."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=one_thread_env(), capture_output=True, text=True, timeout=timeout
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    return rg.train.load_checkpoint(path).model
