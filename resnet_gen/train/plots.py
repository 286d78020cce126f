"""Figures of a run: loss and accuracy curves per epoch, and an evaluation's confusion matrix.
Both go through :mod:`resnet_gen.plotting`, so the same numbers give the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..plotting import new_figure, save_figure


def plot_history(history: Sequence[dict[str, Any]], stem: Path) -> list[Path]:
    """``stem.png`` and ``stem.svg``: loss (left) and accuracy (right) against the epoch."""
    figure = new_figure(9.0, 3.6)
    loss_axes, acc_axes = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    loss_axes.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
    acc_axes.plot(epochs, [100 * row["train_acc"] for row in history], marker="o", label="train")
    if any(row.get("val_loss") is not None for row in history):
        shown = [row for row in history if row.get("val_loss") is not None]
        loss_axes.plot([r["epoch"] for r in shown], [r["val_loss"] for r in shown], marker="s", label="validation")
        acc_axes.plot(
            [r["epoch"] for r in shown], [100 * r["val_acc1"] for r in shown], marker="s", label="validation top-1"
        )
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    acc_axes.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for axes in (loss_axes, acc_axes):
        axes.grid(alpha=0.3)
        axes.legend()
    return save_figure(figure, stem)


def plot_confusion(
    confusion: Sequence[Sequence[int]], class_names: Sequence[str], stem: Path, title: str
) -> list[Path]:
    """The confusion matrix as a heat map, rows the true class and columns the predicted one."""
    count = len(class_names)
    side = min(12.0, 2.5 + 0.45 * count)
    figure = new_figure(side + 1.2, side)
    axes = figure.subplots()
    image = axes.imshow(confusion, cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=axes, shrink=0.8)
    if count <= 30:
        axes.set_xticks(range(count), [str(n) for n in class_names], rotation=90)
        axes.set_yticks(range(count), [str(n) for n in class_names])
    if count <= 20:
        top = max((max(row) for row in confusion), default=0)
        for i, row in enumerate(confusion):
            for j, value in enumerate(row):
                if value:
                    colour = "white" if value > top / 2 else "black"
                    axes.text(j, i, str(value), ha="center", va="center", fontsize=8, color=colour)
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    return save_figure(figure, stem)
