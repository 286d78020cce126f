"""The small runtime library of blocks the live back end assembles networks from."""

from __future__ import annotations

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
        return F.pad(x, (0, 0, 0, 0, 0, self.extra)) if self.extra else x


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with timm's module names (``fc1``, ``fc2``) so weights load."""

    def __init__(self, channels: int, reduced: int, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1, bias=True)
        self.act = act_layer(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3), keepdim=True)
        scale = self.fc2(self.act(self.fc1(scale)))
        out: torch.Tensor = x * scale.sigmoid()
        return out


class EfficientChannelAttention(nn.Module):
    """ECA-Net: a 1-D conv across the pooled channels, with timm's module name (``conv``)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel, padding=(kernel - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean((2, 3)).view(x.shape[0], 1, -1)
        scale = self.conv(scale).view(x.shape[0], -1, 1, 1)
        out: torch.Tensor = x * scale.sigmoid()
        return out


class SamePadAvgPool2d(nn.Module):
    """A stride-1 average pool that keeps the size, as timm's AvgPool2dSame: zero-pad by
    ``kernel - 1`` (the larger half right and bottom; the zeros count in the average), then pool."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.kernel = kernel
        low = (kernel - 1) // 2
        self.padding = (low, kernel - 1 - low, low, kernel - 1 - low)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, self.padding), self.kernel, 1)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample while training."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms, all held as buffers."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
