"""Layer responses (He et al. 2015, Sec. 4.2 and Fig. 7): the standard deviation of each 3x3
layer's output after its norm and before the activation, on test images, in eval mode. Residual
functions respond less than plain layers: closer to zero, as the residual formulation predicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..plan import Plan
from ..plan import layers as L
from .structure import require_blocks
from .trained import EvalData

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Response:
    path: str  # the module whose output is measured (the norm after the 3x3 conv)
    conv: str  # the 3x3 conv
    index: int  # 3x3 layer number in network order
    std: float


@dataclass(frozen=True)
class Responses:
    name: str
    data: str
    images: int
    layers: tuple[Response, ...]

    @property
    def sorted_std(self) -> tuple[float, ...]:
        return tuple(sorted((layer.std for layer in self.layers), reverse=True))


def response_points(plan: Plan) -> list[tuple[str, str]]:
    """(measured module, 3x3 conv) for every 3x3 conv of the blocks' branches: the norm right
    after the conv when there is one, else the conv itself."""
    points = []
    for block in plan.blocks:
        branch = block.branch
        for position, layer in enumerate(branch):
            if isinstance(layer, L.Conv) and layer.kernel == 3:
                after = branch[position + 1] if position + 1 < len(branch) else None
                measured = after if isinstance(after, L.Norm) else layer
                points.append((f"{block.path}.{measured.path}", f"{block.path}.{layer.path}"))
    return points


def layer_responses(model: nn.Module, plan: Plan, data: EvalData) -> Responses:
    """The standard deviation of every 3x3 layer's response over all images of ``data``."""
    import torch

    require_blocks(plan, "measure the responses of", one_run_each=True)
    points = response_points(plan)
    # Running sums per layer: count, sum, sum of squares (float64), so the std covers every image.
    sums = {path: torch.zeros(3, dtype=torch.float64) for path, _ in points}

    def recorder(path: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]:
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            values = output.detach().double()
            sums[path] += torch.stack(
                [torch.tensor(float(values.numel()), dtype=torch.float64), values.sum(), values.square().sum()]
            ).cpu()

        return record

    handles = [model.get_submodule(path).register_forward_hook(recorder(path)) for path, _ in points]
    model.eval()
    try:
        with torch.no_grad():
            for batch in data.batches:
                model(batch.images)
    finally:
        for handle in handles:
            handle.remove()
    rows = []
    for number, (path, conv) in enumerate(points):
        count, total, squares = (float(value) for value in sums[path])
        variance = max(squares / count - (total / count) ** 2, 0.0) * count / max(count - 1, 1)
        rows.append(Response(path, conv, number, variance**0.5))
    return Responses(plan.name, data.source, data.count, tuple(rows))
