"""The 2x down- and up-samplers between the stages of a U-Net."""

import torch
from torch import nn


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
