"""Training experiments: several networks trained with the same recipe on the same data, their
error curves kept side by side.

- degradation (He et al. 2015, Fig. 1 and 6): plain nets get worse with depth, ResNets better;
- ablation: one base spec with fields varied (``shortcut.type=zero_pad,projection,projection_all``,
  the paper's options A, B and C), each variant trained and tabulated.

Specs are fitted to the data (channels, size, classes) before training; training and its data
readers are those of :mod:`resnet_gen.train` and :mod:`resnet_gen.data` (local files only).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis import analyze
from ..compile import load_spec
from ..errors import SpecError
from ..plan import lower
from ..spec import Spec

DEGRADATION_SPECS = ("cifar_plain20", "cifar_plain56", "cifar_resnet20", "cifar_resnet56")


@dataclass(frozen=True)
class Run:
    """One trained network: its error per epoch on the training and the test split."""

    label: str
    spec: str
    residual: bool  # every block has a shortcut
    params: int
    blocks: int
    out: str | None  # the run folder (checkpoints, metrics), if one was written
    epochs: tuple[int, ...]
    train_error: tuple[float, ...]
    test_error: tuple[float, ...]

    @property
    def final_train_error(self) -> float:
        return self.train_error[-1]

    @property
    def final_test_error(self) -> float:
        return self.test_error[-1]


@dataclass(frozen=True)
class Experiment:
    kind: str  # degradation | ablation
    data: str
    recipe: str
    runs: tuple[Run, ...]


def fit_to_data(source: str, data: str, overrides: Sequence[str] = ()) -> Spec:
    """``source`` with ``overrides``, its input and classifier set to what ``data`` holds."""
    from ..data import open_dataset

    spec = load_spec(source, list(overrides))
    info = open_dataset(data, "train").info
    extra = []
    if info.channels != spec.input.channels:
        extra.append(f"input.channels={info.channels}")
    if info.size is not None and info.size != spec.input.hw:
        height, width = info.size
        extra.append(f"input.size={height}" if height == width else f"input.size=[{height},{width}]")
    if spec.head is None or spec.head.num_classes != info.num_classes:
        extra.append(f"head.num_classes={info.num_classes}")
    return load_spec(source, [*overrides, *extra]) if extra else spec


def train_run(
    label: str,
    spec: Spec,
    data: str,
    *,
    recipe: str | None,
    out: Path | None,
    options: Mapping[str, Any],
    recipe_overrides: Sequence[str] = (),
    device: str | None,
    show_progress: bool,
) -> Run:
    """Train ``spec`` (the training issue's loop and recipe) and keep its error curves."""
    from ..train import train

    result = train(
        spec,
        data=data,
        recipe=recipe,
        out=out,
        overrides=list(recipe_overrides) or None,
        device=device,
        progress=show_progress,
        **options,
    )
    history = result["history"]
    if any(row.get("val_acc1") is None for row in history):
        raise SpecError(f"{label}: the run has no test error per epoch; do not turn validation off")
    plan = lower(spec)
    return Run(
        label=label,
        spec=spec.name,
        residual=all(block.shortcut_type != "none" for block in plan.blocks),
        params=analyze(plan).params,
        blocks=len(plan.blocks),
        out=str(out) if out is not None else None,
        epochs=tuple(int(row["epoch"]) for row in history),
        train_error=tuple(1.0 - float(row["train_acc"]) for row in history),
        test_error=tuple(1.0 - float(row["val_acc1"]) for row in history),
    )


def degradation(
    data: str,
    specs: Sequence[str] = DEGRADATION_SPECS,
    *,
    recipe: str | None = None,
    out: Path | None = None,
    overrides: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    recipe_overrides: Sequence[str] = (),
    device: str | None = None,
    show_progress: bool = False,
) -> Experiment:
    """Train each of ``specs`` with the same recipe on ``data`` (runs under ``out/<spec>``)."""
    if not specs:
        raise SpecError("degradation: give at least one spec (--spec cifar_plain20 --spec cifar_resnet20 ...)")
    runs = []
    for source in specs:
        spec = fit_to_data(source, data, overrides)
        folder = out / spec.name if out is not None else None
        runs.append(
            train_run(
                spec.name,
                spec,
                data,
                recipe=recipe,
                out=folder,
                options=options or {},
                recipe_overrides=recipe_overrides,
                device=device,
                show_progress=show_progress,
            )
        )
    return Experiment("degradation", data, recipe or "default", tuple(runs))


def parse_vary(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``shortcut.type=A,B,C`` -> ``("shortcut.type", ["A", "B", "C"])``, one per item."""
    varied = []
    for item in items:
        key, sep, values = item.partition("=")
        choices = [value.strip() for value in values.split(",") if value.strip()]
        if not sep or not key.strip() or not choices:
            raise SpecError(f"--vary {item}: expected FIELD=VALUE,VALUE,... (e.g. shortcut.type=A,B,C)")
        varied.append((key.strip(), choices))
    if not varied:
        raise SpecError("ablation: give at least one --vary FIELD=VALUE,VALUE,...")
    return varied


def ablation(
    base: str,
    vary: Sequence[str],
    data: str,
    *,
    recipe: str | None = None,
    out: Path | None = None,
    overrides: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
    recipe_overrides: Sequence[str] = (),
    device: str | None = None,
    show_progress: bool = False,
) -> Experiment:
    """Train every combination of the varied fields over ``base`` (runs under ``out/<label>``)."""
    varied = parse_vary(vary)
    combinations = list(itertools.product(*(values for _, values in varied)))
    # Every variant is checked before the first one trains: a bad value fails at once.
    variants = []
    for values in combinations:
        settings = [f"{key}={value}" for (key, _), value in zip(varied, values, strict=True)]
        label = ",".join(settings)
        variants.append((label, fit_to_data(base, data, [*overrides, *settings])))
    runs = []
    for number, (label, spec) in enumerate(variants):
        folder = out / f"{number:02d}-{_folder_name(label)}" if out is not None else None
        runs.append(
            train_run(
                label,
                spec,
                data,
                recipe=recipe,
                out=folder,
                options=options or {},
                recipe_overrides=recipe_overrides,
                device=device,
                show_progress=show_progress,
            )
        )
    return Experiment("ablation", data, recipe or "default", tuple(runs))


def _folder_name(label: str) -> str:
    return "".join(char if char.isalnum() or char in "._-" else "_" for char in label)
