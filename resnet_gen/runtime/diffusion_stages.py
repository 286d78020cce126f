"""The stages of a diffusion U-Net and the network that runs them: down stages that hand skips
to the up path, a middle, up stages that concatenate them, and the timestep embedding every
ResBlock reads (the layers themselves are in :mod:`resnet_gen.runtime.diffusion`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DownStage(nn.Module):
    """ResBlocks (each followed by attention, if the stage has it), then an optional down-sampler.
    Returns the output and the skips: each ResBlock's (or attention's) output and the down-sampler's."""

    def __init__(
        self, resnets: Sequence[nn.Module], attentions: Sequence[nn.Module] = (), downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.attentions = nn.ModuleList(attentions)  # before resnets: diffusers' key order
        self.resnets = nn.ModuleList(resnets)
        self.downsamplers = nn.ModuleList([downsample] if downsample is not None else [])

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips: list[torch.Tensor] = []
        # Two loops, not an index into attentions: TorchScript indexes a ModuleList by literals only.
        if len(self.attentions) == 0:
            for resnet in self.resnets:
                x = resnet(x, time)
                skips.append(x)
        else:
            for resnet, attention in zip(self.resnets, self.attentions, strict=True):
                x = attention(resnet(x, time))
                skips.append(x)
        for downsampler in self.downsamplers:
            x = downsampler(x)
            skips.append(x)
        return x, skips


class MidStage(nn.Module):
    """ResBlock, optional attention, ResBlock, at the lowest resolution."""

    def __init__(self, resnets: Sequence[nn.Module], attentions: Sequence[nn.Module] = ()) -> None:
        super().__init__()
        self.attentions = nn.ModuleList(attentions)  # before resnets: diffusers' key order
        self.resnets = nn.ModuleList(resnets)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x, time)
        for attention in self.attentions:
            x = attention(x)
        out: torch.Tensor = self.resnets[1](x, time)
        return out


class UpStage(nn.Module):
    """ResBlocks that each first concatenate the next skip (the last one taken first), attention
    after each if the stage has it, then an optional up-sampler."""

    def __init__(
        self, resnets: Sequence[nn.Module], attentions: Sequence[nn.Module] = (), upsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.attentions = nn.ModuleList(attentions)  # before resnets: diffusers' key order
        self.resnets = nn.ModuleList(resnets)
        self.upsamplers = nn.ModuleList([upsample] if upsample is not None else [])

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], time: torch.Tensor) -> torch.Tensor:
        if len(self.attentions) == 0:
            for resnet in self.resnets:
                x = resnet(torch.cat([x, skips.pop()], dim=1), time)
        else:
            for resnet, attention in zip(self.resnets, self.attentions, strict=True):
                x = attention(resnet(torch.cat([x, skips.pop()], dim=1), time))
        for upsampler in self.upsamplers:
            x = upsampler(x)
        return x


class UNet(nn.Module):
    """A diffusion U-Net. ``forward(x, t)``: ``x`` of shape (N, C, H, W) and ``t`` the timesteps,
    an int, a float or a tensor of shape () or (N,); returns a tensor shaped like ``x`` (with the
    output channels). Module names are those of diffusers' ``UNet2DModel``, so its state_dict loads."""

    def __init__(
        self,
        conv_in: nn.Module,
        time_proj: nn.Module,
        time_embedding: nn.Module,
        down_blocks: Sequence[nn.Module],
        mid_block: nn.Module,
        up_blocks: Sequence[nn.Module],
        conv_norm_out: nn.Module,
        conv_act: nn.Module,
        conv_out: nn.Module,
    ) -> None:
        super().__init__()
        self.conv_in = conv_in
        self.time_proj = time_proj
        self.time_embedding = time_embedding
        self.down_blocks = nn.ModuleList(down_blocks)
        self.up_blocks = nn.ModuleList(up_blocks)  # before mid_block: diffusers' key order
        self.mid_block = mid_block
        self.conv_norm_out = conv_norm_out
        self.conv_act = conv_act
        self.conv_out = conv_out

    def timesteps(self, t: torch.Tensor | float | int, x: torch.Tensor) -> torch.Tensor:
        """``t`` as one timestep per sample. A Python float stays fractional (diffusers truncates it)."""
        if isinstance(t, int):
            t = torch.tensor([t], dtype=torch.long, device=x.device)
        elif isinstance(t, float):
            t = torch.tensor([t], dtype=torch.float32, device=x.device)
        if t.dim() == 0:
            t = t[None]
        if t.dim() != 1 or t.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"t must be a number or a tensor of shape () or ({x.shape[0]},), not {list(t.shape)}")
        return t.to(x.device).expand(x.shape[0])

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | int) -> torch.Tensor:
        time = self.time_embedding(self.time_proj(self.timesteps(t, x)).to(x.dtype))
        x = self.conv_in(x)
        skips = [x]
        for down in self.down_blocks:
            x, produced = down(x, time)
            skips.extend(produced)
        x = self.mid_block(x, time)
        for up in self.up_blocks:
            x = up(x, skips, time)
        out: torch.Tensor = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return out
