"""What the user watches: a rich progress bar per epoch with loss, accuracy, images/s and ETA,
and one summary line per epoch. Only the main process shows it."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


class EpochProgress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> EpochProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(f"epoch {epoch}/{epochs}", total=steps, completed=done, stats="")

    def advance(self, loss: float, accuracy: float, images_per_s: float, steps: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            stats = f"loss {loss:.4f}  acc {accuracy:6.2%}  {images_per_s:,.0f} img/s"
            self._progress.update(self._task, advance=steps, stats=stats)

    def summary(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        parts = [f"epoch {row['epoch']}", f"train loss {row['train_loss']:.4f}", f"acc {row['train_acc']:.2%}"]
        if row.get("val_acc1") is not None:
            parts += [f"val loss {row['val_loss']:.4f}", f"top-1 {row['val_acc1']:.2%}", f"top-5 {row['val_acc5']:.2%}"]
        parts += [f"{row['images_per_s']:,.0f} img/s", f"lr {row['lr']:.4g}"]
        self.console.print("  ".join(parts), highlight=False)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)
