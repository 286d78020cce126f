"""Counting and comparing torch modules independently of the plan."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, channels: int, size: tuple[int, int], *, timestep: bool = False) -> int:
    """MACs of one forward pass at batch 1, as torch's flop counter sees them (FLOPs / 2): convs,
    linears and matrix products. ``timestep``: the model is a U-Net, called as ``model(x, t)``."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(1, channels, *size, device=device)
    inputs = (x, torch.tensor([1], device=device)) if timestep else (x,)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops() // 2


def randomize(model: nn.Module, seed: int = 0) -> None:
    """Give every parameter and norm statistic a random value, so parity tests see real numbers."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
            if tensor.dim() == 1:
                tensor.copy_(0.5 + values)  # norm weights/vars stay positive
            else:
                tensor.copy_((values - 0.5) * 2.0 / max(1, tensor[0].numel()) ** 0.5)


_POOL_SIZE = 1_000_003  # prime, so no tensor's rows or filters repeat the same values


def fill_from_pool(tensors: Iterable[torch.Tensor], seed: int = 0) -> None:
    """Random values, scaled as ``randomize`` scales them, in the floating-point ``tensors``: drawn
    once into a pool and laid out at a different offset in each tensor. As good as fresh draws for
    parity, and several times faster on big nets (fresh draws of 127M float64 values take seconds)."""
    generator = torch.Generator().manual_seed(seed)
    pool = torch.rand(_POOL_SIZE, generator=generator, dtype=torch.float64)
    offset = 0
    with torch.no_grad():
        for tensor in tensors:
            if not tensor.is_floating_point():
                continue
            flat = tensor.view(-1)
            start = 0
            while start < flat.numel():
                take = min(flat.numel() - start, _POOL_SIZE - offset)
                flat[start : start + take].copy_(pool[offset : offset + take])
                start += take
                offset = (offset + take) % _POOL_SIZE
            offset = (offset + 7919) % _POOL_SIZE
            if tensor.dim() == 1:
                tensor.add_(0.5)  # norm weights and variances stay positive
            else:
                tensor.sub_(0.5).mul_(2.0 / max(1, tensor[0].numel()) ** 0.5)


def assert_same_behaviour(ours: nn.Module, theirs: nn.Module, x: torch.Tensor, *, atol: float = 1e-10) -> None:
    """Eval outputs, train outputs and gradients agree."""
    for train in (False, True):
        ours.train(train)
        theirs.train(train)
        ours.zero_grad()
        theirs.zero_grad()
        a = ours(x.clone())
        b = theirs(x.clone())
        torch.testing.assert_close(a, b, rtol=0, atol=atol)
        if train:
            a.square().sum().backward()
            b.square().sum().backward()
            grads_theirs = {name: p.grad for name, p in theirs.named_parameters()}
            for name, p in ours.named_parameters():
                assert p.grad is not None, name
                torch.testing.assert_close(p.grad, grads_theirs[name], rtol=1e-8, atol=atol, msg=name)
