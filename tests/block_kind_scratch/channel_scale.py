"""The scratch kind's torch module."""

from __future__ import annotations

import torch
from torch import nn


class ChannelScale(nn.Module):
    """A learnt scale per channel."""

    def __init__(self, channels: int, init: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1)
