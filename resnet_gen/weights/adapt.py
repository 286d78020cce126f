"""Changing a pretrained first conv for another number of input channels, as timm does."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def adapt_input_conv(weight: Tensor, in_channels: int) -> tuple[Tensor, str]:
    """``weight`` ([out, in, k, k]) for ``in_channels`` inputs, and how it was changed.

    As timm's ``adapt_input_conv``: one channel sums the pretrained channels; N channels repeat
    them (cycling) and scale by ``in / N`` so the response to a constant image is unchanged.
    """
    source = weight.shape[1]
    dtype = weight.dtype
    # Half-precision sums lose too much (and are slow on CPU); float32 and float64 stay as they are.
    work = weight if weight.dtype in (torch.float32, torch.float64) else weight.float()
    if in_channels == 1:
        out = work.sum(dim=1, keepdim=True)
        how = f"input channels {source} -> 1 (summed)"
    else:
        repeat = math.ceil(in_channels / source)
        out = work.repeat(1, repeat, 1, 1)[:, :in_channels] * (source / in_channels)
        how = f"input channels {source} -> {in_channels} (repeated, scaled by {source}/{in_channels})"
    return out.to(dtype), how
