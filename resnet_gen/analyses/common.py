"""What the torch analyses share: a network to probe, a batch to probe it with, and progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import SpecError
from ..plan import Plan, lower
from ..spec import Spec

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Batch:
    """Images and class labels to probe a network with."""

    images: torch.Tensor
    labels: torch.Tensor


def as_plan(spec_or_plan: Spec | Plan) -> Plan:
    return spec_or_plan if isinstance(spec_or_plan, Plan) else lower(spec_or_plan)


def classifier_plan(spec_or_plan: Spec | Plan) -> Plan:
    """The plan, which must end in a classifier: the analyses measure a classification loss."""
    plan = as_plan(spec_or_plan)
    if plan.head is None or plan.head.fc is None or plan.features or plan.decoder is not None:
        raise SpecError(
            f"{plan.name}: the analyses need a classifier head (head.type classifier, head.num_classes > 0, not features_only)"
        )
    if not plan.blocks:
        raise SpecError(f"{plan.name}: has no blocks to analyse; give a spec with at least one stage")
    return plan


def random_batch(plan: Plan, size: int, seed: int, device: str = "cpu") -> Batch:
    """Standard normal images at the spec's input shape and uniform labels, the same for a seed."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    height, width = plan.input_size
    images = torch.randn(size, plan.input_channels, height, width, generator=generator)
    assert plan.head is not None
    labels = torch.randint(0, plan.head.num_classes, (size,), generator=generator)
    return Batch(images.to(device), labels.to(device))


def fresh_model(plan: Plan, seed: int, device: str = "cpu") -> nn.Module:
    """The network at initialisation, drawn from ``seed``."""
    import torch

    from ..live import build

    torch.manual_seed(seed)
    return build(plan).to(device)


def check_device(device: str) -> str:
    """``device`` if torch can use it, else a one-line error naming what to pass instead."""
    import torch

    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"--device {device}: not usable here ({reason}); pass --device cpu") from None
    return device


class Advance(Protocol):
    def __call__(self, steps: int = 1) -> None: ...


@contextmanager
def progress(description: str, total: int, enabled: bool = True) -> Iterator[Advance]:
    """A rich progress bar on stderr (nothing when ``enabled`` is false, as in the Python API)."""
    if not enabled:
        yield lambda steps=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    console = Console(stderr=True)
    # On a terminal only: a pipe or a log file would get the bar's blank lines.
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda steps=1: bar.advance(task, steps)
