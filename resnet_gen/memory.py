"""How much memory building (and exporting) a network will take, worked out from its plan before
anything is allocated, so that a spec within every cap that still needs more than the machine has
is one error line with the numbers instead of an allocator's traceback."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SpecError
from .plan.types import Plan

FLOAT_BYTES = 4  # float32 weights and inputs
_MEMINFO = Path("/proc/meminfo")


def available_bytes() -> int | None:
    """Memory the system can give this process now (Linux's MemAvailable), or None if unknown."""
    try:
        for line in _MEMINFO.read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def needed_bytes(plan: Plan, *, copies: int = 1, example_batch: int = 0) -> int:
    """Weights (``copies`` of them: a model and, say, its serialised form) plus an example input of
    ``example_batch`` images at the spec's input size, in float32."""
    params = sum(stage.params for stage in plan.stages) + sum(
        layer.params for layer in (*plan.stem, *plan.final, *(plan.head.layers if plan.head else ()))
    )
    params += plan.decoder.params if plan.decoder is not None else 0
    height, width = plan.input_size
    return FLOAT_BYTES * (copies * params + example_batch * plan.input_channels * height * width)


def check_fits(plan: Plan, what: str, *, copies: int = 1, example_batch: int = 0) -> None:
    """Refuse (SpecError) when ``what`` (``export``) needs more memory than is available now."""
    needed = needed_bytes(plan, copies=copies, example_batch=example_batch)
    available = available_bytes()
    if available is not None and needed > available:
        raise SpecError(
            f"{plan.name}: {what} needs about {_gb(needed)} of memory (weights and example input in float32),"
            f" but {_gb(available)} are available; make the network or input.size smaller"
        )


def _gb(count: int) -> str:
    return f"{count / 1e9:,.1f} GB"
