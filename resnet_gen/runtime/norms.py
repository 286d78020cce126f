"""Norms torch has no module for, with timm's parameter names so their weights load."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms, all held as buffers (never trained).

    Its keys are batch norm's (``num_batches_tracked`` too, never counted), so a checkpoint moves
    between a frozen and a trained network; one without that key (torchvision's) loads as well.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _load_from_state_dict(
        self,
        state_dict: dict[str, torch.Tensor],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        state_dict.setdefault(f"{prefix}num_batches_tracked", torch.tensor(0, dtype=torch.long))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The buffers go to the op as they are, so torch.fx traces them as attributes (kept in the
        # traced module's state_dict) rather than baking a precomputed scale in as a constant.
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class EvoNormS0(nn.Module):
    """EvoNorm-S0 (Liu et al. 2020) with timm's parameter names: ``x * sigmoid(v * x) / group_std(x)``,
    then ``weight`` and ``bias``; without its nonlinearity only the affine terms run (no ``v``)."""

    def __init__(self, channels: int, groups: int, eps: float, apply_act: bool) -> None:
        super().__init__()
        self.groups = groups
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels)) if apply_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        v = self.v  # a local, so that torch.jit.script sees it is not None below
        if v is not None:
            b, c, h, w = x.shape
            # Statistics in at least float32, never below the input's precision.
            grouped = x.reshape(b, self.groups, c // self.groups, h, w).to(torch.promote_types(x.dtype, torch.float32))
            var = grouped.var(dim=(2, 3, 4), unbiased=False, keepdim=True)
            std = var.add(self.eps).sqrt().to(x.dtype).expand(grouped.shape).reshape(b, c, h, w)
            x = x * (x * v.view(shape)).sigmoid() / std
        return x * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, groups={self.groups}, eps={self.eps}, apply_act={self.v is not None}"


class FilterResponseNormTLU(nn.Module):
    """Filter response normalisation and its thresholded linear unit (Singh & Krishnan 2019) with
    timm's parameter names (``weight``, ``bias``, ``tau``); without the TLU there is no ``tau``."""

    def __init__(self, channels: int, eps: float, apply_act: bool) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.tau = nn.Parameter(torch.zeros(channels)) if apply_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        # Statistics in at least float32, never below the input's precision.
        mean_square = x.square().to(torch.promote_types(x.dtype, torch.float32)).mean(dim=(2, 3), keepdim=True)
        x = x * mean_square.add(self.eps).rsqrt().to(x.dtype)
        x = x * self.weight.view(shape) + self.bias.view(shape)
        tau = self.tau  # a local, so that torch.jit.script sees it is not None below
        if tau is not None:
            x = torch.maximum(x, tau.view(shape))
        return x

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}, apply_act={self.tau is not None}"
