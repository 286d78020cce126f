"""Gradient flow at initialisation: the gradient norm reaching each block's input, several seeds.

One batch, the classifier's cross-entropy against its labels, batch norms in training mode (as in
the first training step). Deep plain nets with batch norm explode the gradient towards the input
(Balduzzi et al. 2017, Yang et al. 2019); residual nets keep it within about a decade.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..plan import Plan
from ..spec import Spec
from .common import Batch, classifier_plan, fresh_model, progress, random_batch
from .structure import BlockSite, block_sites, by_module

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class GradientNorm:
    """The gradient norm at one place, one value per seed."""

    path: str  # block path (layer2.0; "layer2.0 step 3/8" in a tied stage), or stage path (layer2) for the stage rows
    stage: int
    index: int  # block index in the network (blocks), or stage number (stages)
    norms: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.norms)

    @property
    def low(self) -> float:
        return min(self.norms)

    @property
    def high(self) -> float:
        return max(self.norms)


@dataclass(frozen=True)
class GradientFlow:
    """Per block and per stage input, the norm of d loss / d input over the batch."""

    name: str
    seeds: tuple[int, ...]
    batch: int
    data: str  # "random" or the data set the batch came from
    blocks: tuple[GradientNorm, ...]
    stages: tuple[GradientNorm, ...]

    @property
    def first_to_last(self) -> float:
        """How many times larger the gradient is at the first block than at the last (mean over seeds)."""
        return self.blocks[0].mean / self.blocks[-1].mean


def block_input_gradients(model: nn.Module, plan: Plan, batch: Batch) -> dict[str, float]:
    """One forward and backward pass; the norm of the gradient at each block's input (at each
    step's, for a tied stage), by the site's label."""
    import torch.nn.functional as F

    norms: dict[str, float] = {}
    handles = []
    for path, next_run in by_module(block_sites(plan)).items():

        def record(
            module: nn.Module, inputs: tuple[torch.Tensor, ...], next_run: Callable[[], BlockSite] = next_run
        ) -> None:
            label = next_run().label
            if inputs[0].requires_grad:
                inputs[0].register_hook(lambda grad: norms.__setitem__(label, float(grad.norm())))  # type: ignore[no-untyped-call]

        handles.append(model.get_submodule(path).register_forward_pre_hook(record))
    try:
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(batch.images), batch.labels)
        loss.backward()  # type: ignore[no-untyped-call]
    finally:
        for handle in handles:
            handle.remove()
    return norms


def gradient_flow(
    spec_or_plan: Spec | Plan,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    batch: int = 32,
    data: Batch | None = None,
    data_name: str = "random",
    device: str = "cpu",
    state: dict[str, torch.Tensor] | None = None,
    show_progress: bool = False,
) -> GradientFlow:
    """The gradient norm at each block and stage input, for a fresh network per seed (or the
    trained ``state`` with each seed's batch). ``data`` fixes the batch; else it is random per seed."""
    plan = classifier_plan(spec_or_plan)
    per_seed: list[dict[str, float]] = []
    with progress(f"gradients {plan.name}", len(seeds), show_progress) as advance:
        for seed in seeds:
            model = fresh_model(plan, seed, device)
            if state is not None:
                model.load_state_dict(state)
            model.train()
            probe = data if data is not None else random_batch(plan, batch, seed, device)
            per_seed.append(block_input_gradients(model, plan, probe))
            advance()
    sites = block_sites(plan)
    blocks = tuple(
        GradientNorm(site.label, site.stage, number, tuple(norms[site.label] for norms in per_seed))
        for number, site in enumerate(sites)
    )
    stages = tuple(
        GradientNorm(
            stage.path, stage.index, stage.index, next(row.norms for row in blocks if row.stage == stage.index)
        )
        for stage in plan.stages
    )
    used = data.images.shape[0] if data is not None else batch
    return GradientFlow(plan.name, tuple(seeds), used, data_name if data is not None else "random", blocks, stages)
