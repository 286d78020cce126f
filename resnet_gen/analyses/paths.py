"""Paths through a residual network (Veit et al. 2016): n residual blocks unravel into 2^n paths,
one per choice of branch or shortcut at each block, and C(n, k) of them pass through k branches.

Computed from the plan alone, without torch. A plain block has no shortcut, so every path goes
through its branch: it adds one to every length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..plan import Plan, lower
from ..spec import Spec


@dataclass(frozen=True)
class PathLengths:
    """How many paths pass through each number of residual branches."""

    name: str
    residual_blocks: int  # blocks with a shortcut: each doubles the paths
    plain_blocks: int  # blocks without: every path goes through them
    counts: tuple[int, ...]  # counts[k]: paths through k + plain_blocks branches

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(self.plain_blocks + k for k in range(len(self.counts)))

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def typical(self) -> tuple[int, int]:
        """The shortest range of lengths, centred on the mode, that holds at least 95% of all paths."""
        order = sorted(range(len(self.counts)), key=lambda k: (-self.counts[k], k))
        held, chosen = 0, []
        for k in order:
            chosen.append(k)
            held += self.counts[k]
            if held * 20 >= self.total * 19:
                break
        return self.plain_blocks + min(chosen), self.plain_blocks + max(chosen)


def path_lengths(spec_or_plan: Spec | Plan) -> PathLengths:
    plan = spec_or_plan if isinstance(spec_or_plan, Plan) else lower(spec_or_plan)
    # A tied stage's one block counts once per step: unravelled, each step is a residual unit.
    runs = [(block, stage.repeats) for stage in plan.stages for block in stage.blocks]
    residual = sum(repeats for block, repeats in runs if block.shortcut_type != "none")
    plain = sum(repeats for block, repeats in runs) - residual
    return PathLengths(plan.name, residual, plain, tuple(math.comb(residual, k) for k in range(residual + 1)))
