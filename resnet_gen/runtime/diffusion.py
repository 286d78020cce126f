"""The layers of a diffusion U-Net (Ho et al. 2020, as diffusers' ``UNet2DModel`` names them):
the timestep embedding, self-attention over the positions of a feature map, and the 2x down- and
up-samplers between stages. The ResBlock, which reads the embedding as a second input, is a block
kind (:mod:`resnet_gen.blocks.diffusion`): the live back end builds it as every kind's block
(:class:`resnet_gen.live.build.ResidualBlock`), and the emitter writes its class out of the same plan."""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalTimesteps(nn.Module):
    """The DDPM / Transformer positional embedding of one timestep per sample, shape (N, dim).

    Computed in float32 whatever the model's dtype, as diffusers computes it, so that a float64
    model gives exactly diffusers' float64 outputs."""

    def __init__(self, dim: int, flip_sin_to_cos: bool = True, freq_shift: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.flip_sin_to_cos = flip_sin_to_cos
        self.freq_shift = freq_shift

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=timesteps.device)
        frequencies = torch.exp(exponent / (half - self.freq_shift))
        angles = timesteps[:, None].float() * frequencies[None, :]
        if self.flip_sin_to_cos:
            embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        else:
            embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        if self.dim % 2:
            embedding = nn.functional.pad(embedding, (0, 1))
        return embedding


class TimestepMLP(nn.Module):
    """Linear, activation, linear: the sinusoid to the embedding every ResBlock reads."""

    def __init__(self, in_features: int, channels: int, act_layer: type[nn.Module] = nn.SiLU) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, channels)
        self.act = act_layer()
        self.linear_2 = nn.Linear(channels, channels)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear_2(self.act(self.linear_1(embedding)))
        return out


class SelfAttention(nn.Module):
    """GroupNorm, q/k/v projections of the H*W positions, softmax(q k^T / sqrt(d)) v per head,
    an output projection and the residual addition (the attention block of DDPM)."""

    def __init__(self, channels: int, heads: int = 1, groups: int | None = 32, eps: float = 1e-5) -> None:
        super().__init__()
        self.heads = heads
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps) if groups else None
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        h = x if self.group_norm is None else self.group_norm(x)
        h = h.flatten(2).transpose(1, 2)  # (N, H*W, C)
        q, k, v = self._heads(self.to_q(h)), self._heads(self.to_k(h)), self._heads(self.to_v(h))
        weights = torch.softmax(q @ k.transpose(-1, -2) * (channels // self.heads) ** -0.5, dim=-1)
        h = (weights @ v).transpose(1, 2).reshape(batch, -1, channels)
        for layer in self.to_out:
            h = layer(h)
        return x + h.transpose(1, 2).reshape(batch, channels, height, width)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(N, H*W, C) -> (N, heads, H*W, C / heads)."""
        batch, positions, channels = t.shape
        return t.view(batch, positions, self.heads, channels // self.heads).transpose(1, 2)


class Downsample(nn.Module):
    """Halve the resolution: a 3x3 stride-2 conv, or 2x2 average pooling (``conv=False``).
    ``padding=0`` pads only right and bottom by one (TensorFlow's SAME, as the DDPM checkpoints)."""

    def __init__(self, channels: int, conv: bool = True, padding: int = 1) -> None:
        super().__init__()
        self.pad_right_bottom = conv and padding == 0
        self.conv: nn.Module = nn.Conv2d(channels, channels, 3, stride=2, padding=padding) if conv else nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_right_bottom:
            x = nn.functional.pad(x, (0, 1, 0, 1))
        out: torch.Tensor = self.conv(x)
        return out


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour interpolation, then a 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))
        return out
