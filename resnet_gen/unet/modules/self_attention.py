"""Self-attention over the positions of a feature map, with a residual connection."""

import torch
from torch import nn


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

        def split(t: torch.Tensor) -> torch.Tensor:  # (N, heads, H*W, C / heads)
            return t.view(batch, -1, self.heads, channels // self.heads).transpose(1, 2)

        q, k, v = split(self.to_q(h)), split(self.to_k(h)), split(self.to_v(h))
        weights = torch.softmax(q @ k.transpose(-1, -2) * (channels // self.heads) ** -0.5, dim=-1)
        h = (weights @ v).transpose(1, 2).reshape(batch, -1, channels)
        for layer in self.to_out:
            h = layer(h)
        return x + h.transpose(1, 2).reshape(batch, channels, height, width)
