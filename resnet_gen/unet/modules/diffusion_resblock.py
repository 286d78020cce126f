"""The ResBlock of diffusion U-Nets (Ho et al. 2020), with the time embedding as a second input."""

import torch
from torch import nn


class DiffusionResBlock(nn.Module):
    """GroupNorm, act, 3x3 conv, + time projection, GroupNorm, act, dropout, 3x3 conv, plus the
    shortcut (a 1x1 or 3x3 projection where the channels change).

    ``injection="add"`` adds the projected embedding after the first conv; ``"scale_shift"``
    projects it to a scale and a shift applied after the second norm (``h * (1 + scale) + shift``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        time_channels: int,
        groups: int = 32,
        eps: float = 1e-5,
        injection: str = "add",
        dropout: float = 0.0,
        shortcut_kernel: int = 1,
        act_layer: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        self.injection = injection
        self.norm1 = nn.GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        scale_shift = injection == "scale_shift"
        self.time_emb_proj = nn.Linear(time_channels, out_channels * (2 if scale_shift else 1))
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.nonlinearity = act_layer()
        self.conv_shortcut: nn.Module | None = None
        if in_channels != out_channels:
            self.conv_shortcut = nn.Conv2d(in_channels, out_channels, shortcut_kernel, padding=shortcut_kernel // 2)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.nonlinearity(self.norm1(x)))
        projected = self.time_emb_proj(self.nonlinearity(time))[:, :, None, None]
        if self.injection == "scale_shift":
            scale, shift = projected.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + projected)
        h = self.conv2(self.dropout(self.nonlinearity(h)))
        shortcut = x if self.conv_shortcut is None else self.conv_shortcut(x)
        out: torch.Tensor = shortcut + h
        return out
