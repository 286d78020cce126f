"""Evaluation over a data loader: loss, top-1 / top-5 accuracy, per-class accuracy and the
confusion matrix, returned as plain data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    device: torch.device,
    *,
    amp: str = "none",
    channels_last: bool = False,
) -> dict[str, Any]:
    """Mean cross-entropy ``loss``, ``acc1``, ``acc5`` (fractions), ``count``, ``per_class``
    accuracy and ``confusion`` (rows: true class, columns: predicted)."""
    was_training = model.training
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    loss_sum, top5, count = 0.0, 0, 0
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        loss_sum += float(criterion(logits, labels))
        k = min(5, logits.shape[1])
        top5 += int((logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum())
        predicted = logits.argmax(dim=1)
        confusion += torch.bincount((labels * num_classes + predicted).cpu(), minlength=num_classes * num_classes).view(
            num_classes, num_classes
        )
        count += len(labels)
    model.train(was_training)
    correct = confusion.diag()
    per_class_total = confusion.sum(dim=1)
    per_class = [
        float(c) / float(t) if t else None for c, t in zip(correct.tolist(), per_class_total.tolist(), strict=True)
    ]
    return {
        "loss": loss_sum / max(count, 1),
        "acc1": float(correct.sum()) / max(count, 1),
        "acc5": top5 / max(count, 1),
        "count": count,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }
