"""The Neural-ODE block's residual function (Chen et al. 2018) and its explicit Euler form, with
the module names of torchdiffeq's ``examples/odenet_mnist.py`` so its weights load as they are.
Torch only: the solver that integrates the function with torchdiffeq is in ``ode_solver.py``."""

from __future__ import annotations

import math

import torch
from torch import nn


class ConcatConv2d(nn.Module):
    """A conv over the features with the time ``t`` as an extra first input channel (Chen et al.
    2018), torchdiffeq's example's ConcatConv2d: its conv is ``_layer`` and has a bias."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 1
    ) -> None:
        super().__init__()
        self._layer = nn.Conv2d(in_channels + 1, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        time = torch.ones_like(x[:, :1]) * t
        out: torch.Tensor = self._layer(torch.cat([time, x], 1))
        return out


class ODEFunc(nn.Module):
    """The residual function ``f(t, h)``: norm, activation, time-channel conv, norm, activation,
    time-channel conv, norm (torchdiffeq's example's ODEfunc, group norms). ``nfe`` counts its
    evaluations since its block's last forward began."""

    def __init__(
        self, conv1: nn.Module, conv2: nn.Module, channels: int, groups: int, act: nn.Module, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels, eps=eps)
        self.relu = act
        self.conv1 = conv1
        self.norm2 = nn.GroupNorm(groups, channels, eps=eps)
        self.conv2 = conv2
        self.norm3 = nn.GroupNorm(groups, channels, eps=eps)
        self.nfe = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        out: torch.Tensor = self.relu(self.norm1(x))
        out = self.conv1(t, out)
        out = self.relu(self.norm2(out))
        out = self.conv2(t, out)
        out = self.norm3(out)
        return out


class EulerODEBlock(nn.Module):
    """The ODE block as explicit Euler steps: one residual function, its weights tied over the
    steps, ``h = h + dt * f(t_k, h)`` on torchdiffeq's grid (``start + k * step_size``, the last
    point moved to ``end``), so it equals ``odeint(..., method="euler")`` exactly. Torch only."""

    def __init__(self, odefunc: nn.Module, start: float = 0.0, end: float = 1.0, step_size: float = 1.0) -> None:
        super().__init__()
        self.odefunc = odefunc
        self.start = start
        self.end = end
        self.step_size = step_size
        self.steps = math.ceil((end - start) / step_size + 1) - 1

    @property
    def nfe(self) -> int:
        return int(self.odefunc.nfe)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.odefunc.nfe = 0  # type: ignore[assignment]
        grid = torch.arange(0, self.steps + 1, dtype=x.dtype, device=x.device) * self.step_size + self.start
        grid[-1] = self.end
        for k in range(self.steps):
            x = x + (grid[k + 1] - grid[k]) * self.odefunc(grid[k], x)
        return x
