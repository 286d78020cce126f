"""Lesion studies (Veit et al. 2016, "Residual Networks Behave Like Ensembles of Relatively Shallow
Networks", Sec. 4 and 5): test error after deleting single blocks, after deleting k random blocks,
and after swapping k random pairs of blocks.

Deleting a residual block removes its branch and keeps its shortcut (a downsampling block keeps
its projection or zero-padding); a plain block is replaced by its input, where that has the right
shape. A residual net degrades smoothly, a plain one breaks.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..plan import Plan
from .common import progress
from .structure import BlockSite, deletable, deleted_blocks, require_blocks, swapped_blocks
from .trained import EvalData, error_rate

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class SingleDeletion:
    path: str
    stage: int
    index: int  # block number in the network
    downsampling: bool
    error: float


@dataclass(frozen=True)
class RandomLesion:
    """Errors after ``k`` random deletions (or swaps), one per draw."""

    k: int
    errors: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.errors)

    @property
    def spread(self) -> float:
        return statistics.pstdev(self.errors)


@dataclass(frozen=True)
class Lesion:
    name: str
    residual: bool  # every block has a shortcut
    data: str
    images: int
    baseline: float  # error of the whole network
    single: tuple[SingleDeletion, ...]
    deletions: tuple[RandomLesion, ...]
    swaps: tuple[RandomLesion, ...]


def lesion(
    model: nn.Module,
    plan: Plan,
    data: EvalData,
    *,
    draws: int = 3,
    seed: int = 0,
    show_progress: bool = False,
) -> Lesion:
    """Errors of ``model`` (the network of ``plan``) with blocks deleted or swapped, on ``data``."""
    sites = require_blocks(plan, "lesion", one_run_each=True)
    removable = [site for site in sites if deletable(site)]
    swappable = [site for site in sites if not site.reshapes]
    by_stage: dict[int, list[BlockSite]] = {}
    for site in swappable:
        by_stage.setdefault(site.stage, []).append(site)
    pair_stages = [stage for stage, members in by_stage.items() if len(members) >= 2]
    max_swaps = sum(len(by_stage[stage]) // 2 for stage in pair_stages)
    chooser = random.Random(seed)
    total = 1 + len(removable) + draws * (len(removable) + max_swaps)
    with progress(f"lesion {plan.name}", total, show_progress) as advance:
        baseline = error_rate(model, data)
        advance()
        single = []
        for number, site in enumerate(sites):
            if not deletable(site):
                continue
            with deleted_blocks(model, [site]):
                single.append(SingleDeletion(site.path, site.stage, number, site.reshapes, error_rate(model, data)))
            advance()
        deletions = []
        for k in range(1, len(removable) + 1):
            errors = []
            for _ in range(draws):
                with deleted_blocks(model, chooser.sample(removable, k)):
                    errors.append(error_rate(model, data))
                advance()
            deletions.append(RandomLesion(k, tuple(errors)))
        swaps = []
        for k in range(1, max_swaps + 1):
            errors = []
            for _ in range(draws):
                with swapped_blocks(model, _random_pairs(chooser, by_stage, pair_stages, k)):
                    errors.append(error_rate(model, data))
                advance()
            swaps.append(RandomLesion(k, tuple(errors)))
    return Lesion(
        plan.name,
        all(site.residual for site in sites),
        data.source,
        data.count,
        baseline,
        tuple(single),
        tuple(deletions),
        tuple(swaps),
    )


def _random_pairs(
    chooser: random.Random, by_stage: dict[int, list[BlockSite]], pair_stages: list[int], k: int
) -> list[tuple[BlockSite, BlockSite]]:
    """``k`` disjoint pairs of same-shape blocks, each within one stage."""
    free = {stage: list(by_stage[stage]) for stage in pair_stages}
    pairs = []
    for _ in range(k):
        stage = chooser.choice(sorted(s for s, members in free.items() if len(members) >= 2))
        first, second = chooser.sample(free[stage], 2)
        free[stage].remove(first)
        free[stage].remove(second)
        pairs.append((first, second))
    return pairs
