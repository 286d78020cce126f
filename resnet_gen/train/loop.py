"""The training loop: one process or many (torchrun), resumable at any step.

Per step, in the order a hand-written loop does it: zero the gradients, forward under autocast,
cross-entropy, backward (through the fp16 scaler when there is one), clip, optimizer step, EMA
update, and the schedule's step when it counts steps. Per epoch: the schedule's step when it counts
epochs, validation, a history row, ``last.ckpt`` and ``best.ckpt``, early stopping.
"""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from ..data import open_dataset
from ..data.dataset import ImageDataset, label_counts
from ..data.transforms import Augment
from ..errors import SpecError
from ..files import write_text_atomic
from ..spec.model import Spec
from . import distributed, parts
from .checkpoint import Checkpoint, save_checkpoint
from .fit import check_fit
from .metrics import autocast, evaluate_model
from .progress import EpochProgress
from .recipe import Recipe

HIGHER_IS_BETTER = {"val_acc1": True, "val_acc5": True, "val_loss": False}


class TrainingInterrupted(Exception):
    """Ctrl-C: the run saved a resumable checkpoint at ``path`` and stopped."""

    def __init__(self, path: Path | None, step: int) -> None:
        self.path, self.step = path, step
        where = f"; resume with: resnet-gen train --resume {path}" if path else ""
        super().__init__(f"interrupted at step {step}{where}")


@dataclass
class RunState:
    """Where the run is: the next epoch (0-based) and the batches of it already done."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best: float | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    steps_log: list[dict[str, Any]] = field(default_factory=list)
    partial: dict[str, float] = field(default_factory=dict)


def train(
    spec: Spec | None,
    data: str | None,
    recipe: Recipe,
    out: Path | None,
    *,
    resume: Checkpoint | None = None,
    max_steps: int | None = None,
    validate: bool = True,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """See :func:`resnet_gen.train.train`."""
    processes = distributed.start(device)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _Run(spec, data, recipe, out, resume, processes, max_steps, validate, progress).run()
    finally:
        torch.use_deterministic_algorithms(deterministic)  # a run's setting does not outlive it
        distributed.stop()


class _Run:
    def __init__(
        self,
        spec: Spec | None,
        data: str | None,
        recipe: Recipe,
        out: Path | None,
        resume: Checkpoint | None,
        processes: distributed.Processes,
        max_steps: int | None,
        validate: bool,
        progress: bool,
    ) -> None:
        if resume is not None:
            spec = spec or resume.spec
            data = data or resume.data
            out = out if out is not None else resume.path.parent
        if spec is None or data is None:
            raise SpecError("train: give a spec and --data, or --resume a checkpoint")
        self.spec, self.data, self.recipe, self.out = spec, data, recipe, out
        self.processes, self.resume, self.max_steps = processes, resume, max_steps
        self.device = processes.device
        if recipe.sync_batchnorm and processes.distributed and self.device.type != "cuda":
            raise SpecError("train.sync_batchnorm: torch's SyncBatchNorm needs GPUs; leave it off on CPUs")
        if processes.distributed and recipe.batch_size % processes.world_size:
            raise SpecError(
                f"train.batch_size: {recipe.batch_size} does not divide among {processes.world_size} processes"
            )
        self.per_process_batch = recipe.batch_size // processes.world_size
        self.train_set = self._open("train")
        self.val_set = self._open("test") if validate else None
        self.progress = EpochProgress(progress and processes.is_main)
        self.state = RunState()

    def _open(self, split: str) -> ImageDataset:
        augment = Augment(**self.recipe.augment.model_dump()) if split == "train" else Augment()
        dataset = open_dataset(
            self.data,
            split,
            size=self.spec.input.hw,
            augment=augment,
            normalize=self.recipe.normalize,
            eval_crop=self.recipe.eval_crop,
            channels=self.spec.input.channels,
            num_classes=self.spec.head.num_classes if self.spec.head else 10,
            seed=self.recipe.seed,
        )
        # When training crops and resizes, validation images are resized to the spec's size too.
        check_fit(self.spec, dataset.info, resizes=self.recipe.augment.type == "random_resized_crop")
        return dataset

    # -- setting up --------------------------------------------------------------------------------

    def _prepare_folder(self) -> None:
        """The main process writes spec.yaml and recipe.yaml; when it cannot, every process stops
        with its message (instead of the others waiting for it at the first collective)."""
        problem = None
        if self.processes.is_main:
            try:
                self._write_resolved()
            except SpecError as exc:
                problem = list(exc.problems)
        problem = distributed.broadcast(problem, self.processes)
        if problem:
            raise SpecError(problem)

    def _write_resolved(self) -> None:
        if self.out is None:
            return
        hint = "choose another run folder with --out"
        spec_text = yaml.safe_dump(self.spec.model_dump(mode="json"), sort_keys=False)
        write_text_atomic(self.out / "spec.yaml", spec_text, hint=hint)
        recipe_text = yaml.safe_dump(self.recipe.model_dump(mode="json"), sort_keys=False)
        write_text_atomic(self.out / "recipe.yaml", recipe_text, hint=hint)

    def _build(self) -> None:
        from .. import build

        recipe = self.recipe
        random.seed(recipe.seed)
        torch.manual_seed(recipe.seed)
        if recipe.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        self.net: nn.Module = build(self.spec)
        if self.resume is not None:
            self.net.load_state_dict(self.resume.model)
        if recipe.gradient_checkpointing:
            parts.checkpoint_stages(self.net, [stage.path for stage in _plan_stages(self.spec)])
        if recipe.sync_batchnorm and self.processes.distributed:
            self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)  # type: ignore[no-untyped-call]
        self.net.to(self.device)
        if recipe.channels_last:
            self.net.to(memory_format=torch.channels_last)
        runner: nn.Module = self.net
        if recipe.compile:
            runner = torch.compile(runner)  # type: ignore[assignment]
        if self.processes.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            runner = DistributedDataParallel(runner, device_ids=ids)
        self.runner = runner
        self.optimizer = parts.optimizer_for(self.net, recipe)
        self.steps_per_epoch = math.ceil(
            math.ceil(len(self.train_set) / self.processes.world_size) / self.per_process_batch
        )
        self.total_steps = recipe.steps or recipe.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        units = self.total_steps if recipe.schedule.unit == "step" else self.epochs
        self.scheduler = parts.schedule_for(self.optimizer, recipe, units)
        self.scaler = torch.amp.GradScaler(self.device.type) if recipe.amp == "fp16" else None
        self.ema = parts.ema_for(self.net, recipe.ema.decay) if recipe.ema else None
        self.criterion = parts.loss_for(recipe, label_counts(self.train_set), self.device)
        if self.resume is not None:
            self._restore(self.resume)

    def _restore(self, checkpoint: Checkpoint) -> None:
        state = checkpoint.state
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            if self.ema is not None and state.get("ema") is not None:
                self.ema.module.load_state_dict(state["ema"])
                self.ema.n_averaged.fill_(max(1, int(state.get("global_step", 1))))
            self.state = RunState(
                epoch=int(state["epoch"]),
                step_in_epoch=int(state["step_in_epoch"]),
                global_step=int(state["global_step"]),
                best=state.get("best"),
                bad_epochs=int(state.get("bad_epochs", 0)),
                history=list(state.get("history", [])),
                steps_log=list(state.get("steps_log", [])),
                partial=dict(state.get("partial", {})),
            )
            rng = state["rng"]
            torch.set_rng_state(rng["torch"])
            if rng.get("cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            random.setstate(_as_random_state(rng["python"]))
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise SpecError(
                f"{checkpoint.path}: cannot resume from this checkpoint: {' '.join(str(exc).split())[:200]}"
            ) from None

    # -- running -----------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self._build()
        self._prepare_folder()
        state = self.state
        stopped = "finished"
        with self.progress, _stop_on_sigint() as interrupted:
            while state.epoch < self.epochs and state.global_step < self.total_steps:
                if self.max_steps is not None and state.global_step >= self.max_steps:
                    stopped = "max_steps"
                    break
                outcome = self._epoch(interrupted)
                if outcome == "interrupted":
                    path = self._save("last.ckpt")
                    raise TrainingInterrupted(path, state.global_step)
                if outcome == "max_steps":
                    stopped = "max_steps"
                    self._save("last.ckpt")
                    break
                if outcome == "early_stop":
                    stopped = "early_stopping"
                    break
        if self.out is not None and self.processes.is_main and state.history:
            from .plots import plot_history

            plot_history(state.history, self.out / "curves")
        return {
            "history": state.history,
            "steps": state.steps_log,
            "best": state.best,
            "best_metric": self.recipe.best_metric,
            "global_step": state.global_step,
            "stopped": stopped,
            "out": str(self.out) if self.out is not None else None,
        }

    def _epoch(self, interrupted: threading.Event) -> str:
        from torch.utils.data import Sampler

        from .sampler import EpochSampler

        state, recipe, processes = self.state, self.recipe, self.processes
        sampler: Sampler[Any] = EpochSampler(
            len(self.train_set),
            seed=recipe.seed,
            epoch=state.epoch,
            rank=processes.rank,
            world_size=processes.world_size,
            start=state.step_in_epoch * self.per_process_batch,
        )
        loader = DataLoader(
            self.train_set,
            batch_size=self.per_process_batch,
            sampler=sampler,
            num_workers=recipe.workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            # Its own generator: a loader draws a seed whenever it starts, and from torch's global
            # one that would shift the dropout masks of a resumed run.
            generator=torch.Generator().manual_seed(recipe.seed + state.epoch),
        )
        epoch_steps = min(self.steps_per_epoch, self.total_steps - (state.global_step - state.step_in_epoch))
        self.progress.start_epoch(state.epoch + 1, self.epochs, epoch_steps, state.step_in_epoch)
        partial = state.partial or {"loss": 0.0, "correct": 0.0, "count": 0.0, "seconds": 0.0}
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        count = 0
        started = time.perf_counter()
        self.runner.train()
        outcome = "epoch"
        for images, labels in loader:
            if state.step_in_epoch >= epoch_steps:
                break
            batch_loss, batch_correct = self._step(images, labels)
            loss_sum += batch_loss.detach().double() * len(labels)
            correct += batch_correct
            count += len(labels)
            state.step_in_epoch += 1
            state.global_step += 1
            if recipe.log_every and state.global_step % recipe.log_every == 0 and processes.is_main:
                state.steps_log.append(
                    {"step": state.global_step, "loss": float(batch_loss.detach()), "lr": self._lr()}
                )
            if self.progress.enabled:
                elapsed = time.perf_counter() - started
                images_per_s = count * processes.world_size / max(elapsed, 1e-9)
                self.progress.advance(float(batch_loss.detach()), float(correct) / count, images_per_s)
            if distributed.any_process(interrupted.is_set(), processes):
                outcome = "interrupted"
                break
            if self.max_steps is not None and state.global_step >= self.max_steps:
                outcome = "max_steps"
                break
        seconds = time.perf_counter() - started
        totals = self._sum([float(loss_sum), float(correct), float(count), seconds])
        partial = {
            "loss": partial["loss"] + totals[0],
            "correct": partial["correct"] + totals[1],
            "count": partial["count"] + totals[2],
            "seconds": partial["seconds"] + totals[3] / processes.world_size,
        }
        if outcome != "epoch":
            state.partial = partial
            return outcome
        if recipe.schedule.unit == "epoch":
            self.scheduler.step()
        row = {
            "epoch": state.epoch + 1,
            "step": state.global_step,
            "lr": self._lr(),
            "train_loss": partial["loss"] / max(partial["count"], 1),
            "train_acc": partial["correct"] / max(partial["count"], 1),
            "images_per_s": partial["count"] / max(partial["seconds"], 1e-9),
            "seconds": partial["seconds"],
        }
        row.update(self._validate())
        state.history.append(row)
        state.epoch += 1
        state.step_in_epoch = 0
        state.partial = {}
        self.progress.summary(row)
        improved = self._track_best(row)
        self._save("last.ckpt")
        if improved:
            self._save("best.ckpt")
        self._write_metrics()
        stop = recipe.early_stopping is not None and state.bad_epochs >= recipe.early_stopping.patience
        return "early_stop" if distributed.broadcast(stop, processes) else "epoch"

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recipe = self.recipe
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if recipe.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        self.optimizer.zero_grad()
        with autocast(self.device, recipe.amp):
            output = self.runner(images)
            loss = self.criterion(output, labels)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if recipe.clip_grad_norm is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.net.parameters(), recipe.clip_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if recipe.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(self.net.parameters(), recipe.clip_grad_norm)
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.net)
        if recipe.schedule.unit == "step":
            self.scheduler.step()
        return loss, (output.detach().argmax(dim=1) == labels).sum()

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _sum(self, values: list[float]) -> list[float]:
        if not self.processes.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return [float(v) for v in tensor.tolist()]

    def _validate(self) -> dict[str, Any]:
        """Main process only, on the whole test split; the others wait for its numbers."""
        result: dict[str, Any] = {}
        if self.val_set is not None and self.processes.is_main:
            model = self.ema.module if self.ema is not None else self.net
            loader = DataLoader(
                self.val_set,
                batch_size=self.per_process_batch,
                num_workers=self.recipe.workers,
                generator=torch.Generator().manual_seed(self.recipe.seed),
            )
            metrics = evaluate_model(
                model,
                loader,
                self.val_set.info.num_classes,
                self.device,
                amp=self.recipe.amp,
                channels_last=self.recipe.channels_last,
            )
            result = {"val_loss": metrics["loss"], "val_acc1": metrics["acc1"], "val_acc5": metrics["acc5"]}
        return dict(distributed.broadcast(result, self.processes))

    def _track_best(self, row: dict[str, Any]) -> bool:
        state, recipe = self.state, self.recipe
        metric = recipe.best_metric
        value = row.get(metric)
        if value is None:
            return True  # without validation the latest epoch is the best one known
        higher = HIGHER_IS_BETTER[metric]
        improved = state.best is None or (value > state.best if higher else value < state.best)
        if improved:
            state.best = value
        if recipe.early_stopping is not None:
            watched = recipe.early_stopping.metric
            history = [r[watched] for r in state.history[:-1] if r.get(watched) is not None]
            prior = (max(history) if HIGHER_IS_BETTER[watched] else min(history)) if history else None
            current = row.get(watched)
            delta = recipe.early_stopping.min_delta
            better = (
                prior is None
                or current is None
                or (current > prior + delta if HIGHER_IS_BETTER[watched] else current < prior - delta)
            )
            state.bad_epochs = 0 if better else state.bad_epochs + 1
        return improved

    def _save(self, name: str) -> Path | None:
        if self.out is None or not self.processes.is_main:
            return None
        state = self.state
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _plain_random_state(random.getstate())}
        if torch.cuda.is_available() and self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        payload = {
            "spec": self.spec.model_dump(mode="json"),
            "recipe": self.recipe.model_dump(mode="json"),
            "data": self.data,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "rng": rng,
            "epoch": state.epoch,
            "step_in_epoch": state.step_in_epoch,
            "global_step": state.global_step,
            "best": state.best,
            "bad_epochs": state.bad_epochs,
            "history": state.history,
            "steps_log": state.steps_log,
            "partial": state.partial,
        }
        path = self.out / name
        save_checkpoint(path, payload)
        return path

    def _write_metrics(self) -> None:
        if self.out is None or not self.processes.is_main:
            return
        rows = [{"kind": "epoch", **row} for row in self.state.history]
        rows += [{"kind": "step", **row} for row in self.state.steps_log]
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
        write_text_atomic(self.out / "metrics.jsonl", text, hint="choose another run folder with --out")


def _plan_stages(spec: Spec) -> Any:
    from ..plan import lower

    return lower(spec).stages


def _plain_random_state(value: Any) -> Any:
    version, internal, gauss = value
    return [version, list(internal), gauss]


def _as_random_state(value: Any) -> Any:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


@contextmanager
def _stop_on_sigint() -> Iterator[threading.Event]:
    """The first Ctrl-C asks the loop to stop after the current step; a second one stops at once."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)
