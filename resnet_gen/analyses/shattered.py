"""Shattered gradients (Balduzzi et al. 2017): how alike the input-gradients of nearby inputs are,
block by block.

Inputs on a short line through input space; at each block's output a fixed random read-out gives
a scalar per input, whose gradient with respect to the input is taken at every point of the line.
The measure is the mean cosine similarity of the gradients at neighbouring points: near 1 where
the gradient varies smoothly, near 0 where it looks like white noise. Batch norms use statistics
estimated once on random inputs (evaluation mode), so each input's gradient is its own.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..plan import Plan
from ..spec import Spec
from .common import classifier_plan, fresh_model, progress
from .structure import BlockSite, block_sites, by_module

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Correlation:
    path: str
    depth: int  # blocks from the input, 1 = the first block's output
    values: tuple[float, ...]  # one per seed

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


@dataclass(frozen=True)
class ShatteredGradients:
    name: str
    seeds: tuple[int, ...]
    points: int
    depths: tuple[Correlation, ...]


def calibrate_norms(model: nn.Module, images: torch.Tensor) -> None:
    """Batch-norm running statistics from one pass over ``images`` (exact averages), then eval mode."""
    import torch
    from torch import nn

    norms = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
    model.train()
    with torch.no_grad():
        model(images)
    model.eval()


def line_of_inputs(plan: Plan, points: int, seed: int, device: str) -> torch.Tensor:
    """``points`` inputs evenly spaced on a segment as long as a random image's norm, through it."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    height, width = plan.input_size
    start = torch.randn(plan.input_channels, height, width, generator=generator)
    direction = torch.randn(start.shape, generator=generator)
    direction *= start.norm() / direction.norm()
    steps = torch.linspace(-0.5, 0.5, points).view(-1, 1, 1, 1)
    return (start + steps * direction).to(device)


def block_outputs(model: nn.Module, sites: tuple[BlockSite, ...], inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each block's output for ``inputs`` (each step's, for a tied stage), kept in the graph, by
    the site's label."""
    outputs: dict[str, torch.Tensor] = {}

    def keeper(next_run: Callable[[], BlockSite]) -> Any:
        return lambda module, args, out: outputs.__setitem__(next_run().label, out)

    handles = [model.get_submodule(path).register_forward_hook(keeper(run)) for path, run in by_module(sites).items()]
    try:
        model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def neighbour_similarity(gradients: torch.Tensor) -> float:
    """Mean cosine similarity between the gradients at neighbouring points (rows)."""
    import torch.nn.functional as F

    flat = gradients.flatten(1)
    return float(F.cosine_similarity(flat[:-1], flat[1:], dim=1).mean())


def shattered_gradients(
    spec_or_plan: Spec | Plan,
    *,
    seeds: tuple[int, ...] = (0, 1, 2),
    points: int = 64,
    device: str = "cpu",
    show_progress: bool = False,
) -> ShatteredGradients:
    """The neighbour similarity of input-gradients after each block, per seed, at initialisation."""
    import torch

    plan = classifier_plan(spec_or_plan)
    sites = block_sites(plan)
    per_seed: list[list[float]] = []
    with progress(f"shattered gradients {plan.name}", len(seeds) * len(sites), show_progress) as advance:
        for seed in seeds:
            model = fresh_model(plan, seed, device)
            height, width = plan.input_size
            generator = torch.Generator().manual_seed(10_000 + seed)
            calibration = torch.randn(max(points, 64), plan.input_channels, height, width, generator=generator)
            calibrate_norms(model, calibration.to(device))
            inputs = line_of_inputs(plan, points, seed, device).requires_grad_(True)
            outputs = block_outputs(model, sites, inputs)
            values = []
            for site in sites:
                features = outputs[site.label]
                readout = torch.randn(features.shape[1:], generator=generator).to(device)
                scalar = (features * readout).flatten(1).sum(1)
                (grad,) = torch.autograd.grad(scalar.sum(), inputs, retain_graph=True)
                values.append(neighbour_similarity(grad))
                advance()
            per_seed.append(values)
    depths = tuple(
        Correlation(site.label, depth + 1, tuple(values[depth] for values in per_seed))
        for depth, site in enumerate(sites)
    )
    return ShatteredGradients(plan.name, tuple(seeds), points, depths)
