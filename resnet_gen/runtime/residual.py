"""What sits on a residual block's two paths besides its layers: the parameter-free shortcut and
stochastic depth on the branch; and the stage that applies one block again and again."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: subsample spatially and append zero channels (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, [0, 0, 0, 0, 0, self.extra])
        return x


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drop the whole residual branch per sample while training."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty([x.shape[0]] + [1] * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


class TiedStage(nn.Sequential):
    """A weight-tied stage: its one block (``0``) applied ``repeats`` times with the same weights,
    the forward-Euler reading of a ResNet when the block scales its branch by the step size."""

    def __init__(self, block: nn.Module, repeats: int) -> None:
        super().__init__(block)
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self:
            for _ in range(self.repeats):
                x = block(x)
        return x


class DropPathTiedStage(nn.Sequential):
    """A weight-tied stage with stochastic depth: its one block (``0``) applied once per rate of
    ``drop_rates``, its ``drop_path`` set to that rate each time, so that the rates rise with depth
    as an untied stage's blocks' rates do."""

    drop_rates: list[float]

    def __init__(self, block: nn.Module, drop_rates: Sequence[float]) -> None:
        super().__init__(block)
        if not drop_rates or getattr(block, "drop_path", None) is None:
            raise ValueError("a DropPathTiedStage needs one rate per application and a block with a drop_path")
        self.drop_rates = list(drop_rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self:
            for rate in self.drop_rates:
                # the block's DropPath (TorchScript reads a type comment only at a line's end)
                block.drop_path.rate = rate  # type: ignore[union-attr]
                x = block(x)
        return x
