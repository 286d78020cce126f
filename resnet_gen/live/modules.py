"""The small runtime library of blocks the live back end assembles networks from."""

from __future__ import annotations

import math
from typing import Any

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


class BlurPool2d(nn.Module):
    """Anti-aliased downsampling as timm's BlurPool2d: reflect-pad, then a fixed binomial filter per
    channel at ``stride``. The filter is a non-persistent buffer, so state_dicts match timm's."""

    filt: torch.Tensor

    def __init__(self, channels: int, filter_size: int = 3, stride: int = 2, padding: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.filter_size = filter_size
        self.stride = stride
        self.padding = (padding,) * 4
        self.register_buffer("filt", torch.empty(channels, 1, filter_size, filter_size), persistent=False)
        self.init_non_persistent_buffers()

    def init_non_persistent_buffers(self) -> None:
        """(Re)compute the filter, as timm's method of this name: after ``to_empty`` from the meta device."""
        coeffs = torch.tensor([math.comb(self.filter_size - 1, k) for k in range(self.filter_size)], device="cpu")
        coeffs = coeffs.double() / 2 ** (self.filter_size - 1)
        blur = (coeffs[:, None] * coeffs[None, :])[None, None].repeat(self.channels, 1, 1, 1)
        with torch.no_grad():
            self.filt.copy_(blur)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Every argument spelled out, as pairs: FX quantisation turns this call into a quantised conv.
        stride = (self.stride, self.stride)
        return F.conv2d(F.pad(x, self.padding, mode="reflect"), self.filt, None, stride, (0, 0), (1, 1), self.channels)


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
    """Batch norm with fixed statistics and affine terms, all held as buffers.

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


def _stats_dtype(x: torch.Tensor) -> torch.dtype:
    """Statistics in at least float32 (half-precision inputs), never below the input's precision."""
    return torch.promote_types(x.dtype, torch.float32)


class StdConv2d(nn.Conv2d):
    """Conv with weight standardisation: each output filter at zero mean, unit variance (timm's StdConv2d)."""

    def __init__(self, *args: Any, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = self.weight.reshape(1, self.out_channels, -1)
        weight = F.batch_norm(flat, None, None, training=True, momentum=0.0, eps=self.eps).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class EvoNormS0(nn.Module):
    """EvoNorm-S0 with timm's parameter names (``weight``, ``bias``, ``v``); ``v`` only with its nonlinearity."""

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-5, apply_act: bool = True) -> None:
        super().__init__()
        self.groups = groups
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels)) if apply_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        if self.v is not None:
            b, c, h, w = x.shape
            grouped = x.reshape(b, self.groups, c // self.groups, h, w).to(_stats_dtype(x))
            var = grouped.var(dim=(2, 3, 4), unbiased=False, keepdim=True)
            std = var.add(self.eps).sqrt().to(x.dtype).expand(grouped.shape).reshape(b, c, h, w)
            x = x * (x * self.v.view(shape)).sigmoid() / std
        return x * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, groups={self.groups}, eps={self.eps}, apply_act={self.v is not None}"


class FilterResponseNormTLU(nn.Module):
    """Filter response norm and its thresholded linear unit, with timm's names (``weight``, ``bias``, ``tau``)."""

    def __init__(self, channels: int, eps: float = 1e-5, apply_act: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.tau = nn.Parameter(torch.zeros(channels)) if apply_act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        mean_square = x.square().to(_stats_dtype(x)).mean(dim=(2, 3), keepdim=True)
        x = x * mean_square.add(self.eps).rsqrt().to(x.dtype)
        x = x * self.weight.view(shape) + self.bias.view(shape)
        return torch.maximum(x, self.tau.view(shape)) if self.tau is not None else x

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, eps={self.eps}, apply_act={self.tau is not None}"


class SplitAttention(nn.Module):
    """ResNeSt's split-attention conv with timm's module names (``conv``, ``bn0``, ``fc1``, ``bn1``,
    ``fc2``), so its weights load: ``radix`` splits of the grouped conv, weighted by a softmax over
    the splits (a sigmoid for radix 1) computed from their pooled sum."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        *,
        stride: int,
        padding: int,
        dilation: int,
        groups: int,
        radix: int,
        attn_channels: int,
        eps: float,
        momentum: float,
        act_layer: type[nn.Module],
    ) -> None:
        super().__init__()
        self.radix = radix
        self.groups = groups
        mid = out_channels * radix
        self.conv = nn.Conv2d(in_channels, mid, kernel, stride, padding, dilation, groups=groups * radix, bias=False)
        self.bn0 = nn.BatchNorm2d(mid, eps=eps, momentum=momentum)
        self.act0 = act_layer(inplace=True)
        self.fc1 = nn.Conv2d(out_channels, attn_channels, 1, groups=groups)
        self.bn1 = nn.BatchNorm2d(attn_channels, eps=eps, momentum=momentum)
        self.act1 = act_layer(inplace=True)
        self.fc2 = nn.Conv2d(attn_channels, mid, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act0(self.bn0(self.conv(x)))
        batch, channels, height, width = x.shape
        splits = x.reshape(batch, self.radix, channels // self.radix, height, width)
        pooled = splits.sum(dim=1).mean((2, 3), keepdim=True)
        logits = self.fc2(self.act1(self.bn1(self.fc1(pooled))))
        if self.radix > 1:
            # Softmax across the splits of each group: logits are laid out (group, split, channel).
            weights = logits.view(batch, self.groups, self.radix, -1).transpose(1, 2).softmax(dim=1)
        else:
            weights = logits.sigmoid()
        weights = weights.reshape(batch, self.radix, channels // self.radix, 1, 1)
        out: torch.Tensor = (splits * weights).sum(dim=1)
        return out
