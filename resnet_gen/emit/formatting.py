"""Formatting with ruff (a runtime dependency), run as its own binary on stdin.

Options are given in full and configuration files are ignored (``--isolated``), so the output
does not depend on where the build runs.
"""

from __future__ import annotations

import subprocess
from functools import cache

from .values import EmitError

LINE_LENGTH = 120
TARGET = "py310"


@cache
def ruff_binary() -> str:
    try:
        from ruff import find_ruff_bin  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - ruff is a dependency
        raise EmitError("the ruff package is not installed; pip install ruff") from None
    try:
        return str(find_ruff_bin())
    except FileNotFoundError:
        raise EmitError("the ruff package has no ruff binary; reinstall ruff") from None


def ruff_command(*args: str) -> list[str]:
    return [ruff_binary(), *args, "--isolated", "--line-length", str(LINE_LENGTH), "--target-version", TARGET]


def ruff_format(source: str) -> str:
    """``source`` formatted by ``ruff format``."""
    done = subprocess.run(
        [*ruff_command("format"), "--stdin-filename", "generated.py", "-"],
        input=source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        detail = " ".join(done.stderr.decode("utf-8", "replace").split())[:300]
        raise EmitError(f"ruff format rejected the generated source (a template bug): {detail}")
    return done.stdout.decode("utf-8")
