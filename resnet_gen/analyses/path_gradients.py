"""The gradient each path length carries (Veit et al. 2016, Sec. 6 and Fig. 6).

To sample a path of length k: one forward pass of a batch, then a backward pass that goes
through the residual branch of k randomly chosen residual blocks and only through the shortcut
of the others; the norm of the gradient reaching the input image is that path's magnitude. Times
the number of paths of that length (paths.path_lengths), it says where the effective gradient of
the whole network comes from.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..plan import Plan
from ..spec import Spec
from .common import Batch, classifier_plan, fresh_model, progress, random_batch
from .paths import PathLengths, path_lengths
from .structure import BlockSite, gradient_routes, require_blocks

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class LengthGradient:
    length: int  # branches the sampled paths pass through (plain blocks included)
    paths: int  # how many paths have this length
    norms: tuple[float, ...]  # one per sampled path

    @property
    def mean(self) -> float:
        return statistics.fmean(self.norms)

    @property
    def total(self) -> float:
        """The magnitude all paths of this length carry together: mean times count."""
        return self.mean * self.paths


@dataclass(frozen=True)
class PathGradients:
    name: str
    seed: int
    batch: int
    samples: int
    lengths: PathLengths
    per_length: tuple[LengthGradient, ...]

    @property
    def effective(self) -> tuple[int, int]:
        """The lengths holding the middle 90% of the total gradient (Veit's 'effective paths')."""
        totals = [row.total for row in self.per_length]
        whole = sum(totals)
        running, low, high = 0.0, self.per_length[0].length, self.per_length[-1].length
        for row, total in zip(self.per_length, totals, strict=True):
            if running < 0.05 * whole <= running + total:
                low = row.length
            if running < 0.95 * whole <= running + total:
                high = row.length
            running += total
        return low, high


def routed_input_gradient(
    model: nn.Module, sites: tuple[BlockSite, ...], batch: Batch, through_branch: Collection[str]
) -> torch.Tensor:
    """d loss / d image with the backward pass routed as :func:`structure.gradient_routes` says."""
    import torch.nn.functional as F

    images = batch.images.detach().clone().requires_grad_(True)
    with gradient_routes(model, sites, through_branch):
        loss = F.cross_entropy(model(images), batch.labels)
    model.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    assert images.grad is not None
    return images.grad


def path_gradients(
    spec_or_plan: Spec | Plan,
    *,
    samples: int = 4,
    batch: int = 16,
    seed: int = 0,
    device: str = "cpu",
    state: dict[str, torch.Tensor] | None = None,
    data: Batch | None = None,
    show_progress: bool = False,
) -> PathGradients:
    """For each length, the input-gradient norm of ``samples`` random paths of that length."""
    plan = classifier_plan(spec_or_plan)
    sites = require_blocks(plan, "route gradients through", one_run_each=True)
    residual = [site for site in sites if site.residual]
    counts = path_lengths(plan)
    model = fresh_model(plan, seed, device)
    if state is not None:
        model.load_state_dict(state)
    model.train()
    probe = data if data is not None else random_batch(plan, batch, seed, device)
    chooser = random.Random(seed)
    rows = []
    with progress(f"path gradients {plan.name}", len(counts.counts) * samples, show_progress) as advance:
        for k, count in enumerate(counts.counts):
            norms = []
            for _ in range(samples):
                chosen = {site.path for site in chooser.sample(residual, k)}
                norms.append(float(routed_input_gradient(model, sites, probe, chosen).norm()))
                advance()
            rows.append(LengthGradient(counts.plain_blocks + k, count, tuple(norms)))
    return PathGradients(plan.name, seed, probe.images.shape[0], samples, counts, tuple(rows))
