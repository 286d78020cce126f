"""The pieces a recipe asks for: optimizer (with weight-decay exclusion), schedule, loss, EMA,
gradient checkpointing per stage. Each is torch's own class, configured from the recipe."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .recipe import Recipe


def optimizer_for(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    settings = recipe.optimizer
    params: Any = [p for p in model.parameters() if p.requires_grad]
    if settings.no_decay_norm_bias:
        decay = [p for p in params if p.ndim > 1]
        rest = [p for p in params if p.ndim <= 1]  # norm weights and biases are the 1-D parameters
        params = [{"params": decay}, {"params": rest, "weight_decay": 0.0}]
    if settings.type == "sgd":
        return torch.optim.SGD(
            params,
            lr=settings.lr,
            momentum=settings.momentum,
            weight_decay=settings.weight_decay,
            nesterov=settings.nesterov,
        )
    kind = torch.optim.Adam if settings.type == "adam" else torch.optim.AdamW
    return kind(params, lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)


def schedule_for(
    optimizer: torch.optim.Optimizer, recipe: Recipe, total_units: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """``total_units`` is the run's length in the schedule's unit (epochs or steps)."""
    lr_scheduler = torch.optim.lr_scheduler
    schedule = recipe.schedule
    after_warmup = max(1, total_units - schedule.warmup)
    main: lr_scheduler.LRScheduler
    if schedule.type == "step":
        main = lr_scheduler.StepLR(optimizer, step_size=schedule.step_size, gamma=schedule.gamma)
    elif schedule.type == "multistep":
        main = lr_scheduler.MultiStepLR(optimizer, milestones=schedule.milestones, gamma=schedule.gamma)
    elif schedule.type == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=after_warmup, eta_min=schedule.min_lr)
    else:
        main = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if not schedule.warmup:
        return main
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=schedule.warmup_factor, total_iters=schedule.warmup)
    return lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[schedule.warmup])


def loss_for(recipe: Recipe, class_counts: list[int], device: torch.device) -> nn.Module:
    weight = None
    if recipe.class_weights == "balanced":
        total, present = sum(class_counts), sum(1 for c in class_counts if c)
        weight = torch.tensor([total / (present * c) if c else 0.0 for c in class_counts], dtype=torch.float32)
    elif recipe.class_weights is not None:
        weight = torch.tensor(recipe.class_weights, dtype=torch.float32)
    return nn.CrossEntropyLoss(
        weight=weight.to(device) if weight is not None else None, label_smoothing=recipe.label_smoothing
    )


def checkpoint_stages(model: nn.Module, stage_names: list[str]) -> None:
    """Recompute each stage's activations in the backward pass instead of keeping them.

    The stage's forward is replaced on the instance, so module paths and state_dict keys stay as
    they are. Batch norms in a recomputed stage see their batch twice: their running statistics
    move twice per step (training itself is unchanged)."""
    for name in stage_names:
        stage = model.get_submodule(name)
        stage.forward = functools.partial(checkpoint, stage.forward, use_reentrant=False)


def ema_for(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    average = get_ema_multi_avg_fn(decay)  # type: ignore[no-untyped-call]
    return AveragedModel(model, multi_avg_fn=average, use_buffers=True)
