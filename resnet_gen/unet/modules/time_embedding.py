"""The timestep embedding of a diffusion U-Net: a sinusoid of the timestep, then an MLP."""

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
