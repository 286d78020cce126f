"""Training and evaluation of any spec, from one CPU to many GPUs under torchrun.

``train(spec, data=..., recipe=...)`` returns the history as plain data; ``evaluate(...)``
returns top-1 / top-5, loss, per-class accuracy and the confusion matrix; ``load_checkpoint``
gives back a run's resolved spec, recipe and model state, ``model_from_checkpoint`` the live
network. Importing this package does not import torch.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .recipe import PRESETS, Recipe, load_recipe, preset

if TYPE_CHECKING:
    from torch import nn

    from ..spec.model import Spec
    from .checkpoint import Checkpoint


def train(
    spec: Spec | str | Path | None = None,
    data: str | None = None,
    recipe: Recipe | str | Path | None = None,
    out: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | list[str] | None = None,
    resume: str | Path | None = None,
    max_steps: int | None = None,
    validate: bool = True,
    device: str | None = None,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Train ``spec`` on ``data`` (a :func:`resnet_gen.data.open_dataset` source) with ``recipe``
    (a preset name, a YAML file or a :class:`Recipe`; by default the data set's usual preset).

    ``overrides`` and keyword ``options`` set recipe fields (``epochs=5``, ``amp="bf16"``,
    ``{"optimizer.lr": 0.05}``). ``out`` is the run folder (spec.yaml, recipe.yaml, metrics.jsonl,
    last.ckpt, best.ckpt, curves.png/svg); without it nothing is written. ``resume`` continues a
    checkpoint exactly (its spec, recipe, data and folder unless given). ``max_steps`` stops after
    that many steps in all and saves ``last.ckpt``. Returns ``{"history": [one row per epoch],
    "steps", "best", "best_metric", "global_step", "stopped", "out"}``.
    """
    from ..compile import load_spec
    from . import loop
    from .checkpoint import load_checkpoint

    checkpoint = load_checkpoint(resume) if resume is not None else None
    loaded_spec = None
    if spec is not None:
        loaded_spec = spec if not isinstance(spec, (str, Path)) else load_spec(spec)
    resolved = _resolve_recipe(recipe, data, checkpoint, overrides, options)
    return loop.train(
        loaded_spec,
        data,
        resolved,
        Path(out).expanduser() if out is not None else None,
        resume=checkpoint,
        max_steps=max_steps,
        validate=validate,
        device=device,
        progress=progress,
    )


def _resolve_recipe(
    recipe: Recipe | str | Path | None,
    data: str | None,
    checkpoint: Checkpoint | None,
    overrides: Mapping[str, Any] | list[str] | None,
    options: Mapping[str, Any],
) -> Recipe:
    """The recipe given, the checkpoint's on resume, or the data set's usual preset; then the
    overrides (``--set train.KEY=VALUE`` items or a mapping) and keyword options on top."""
    from ..errors import Location
    from ..spec.load import parse_overrides
    from ..spec.yaml_source import LocatedMapping
    from .recipe import DEFAULT_PRESET, apply_recipe_overrides, resolve_recipe_source, validate_recipe

    unknown = [key for key in options if key not in Recipe.model_fields]
    if unknown:
        raise TypeError(f"train() got unknown options {unknown}; recipe fields are {sorted(Recipe.model_fields)}")
    if isinstance(recipe, Recipe):
        base = LocatedMapping(recipe.model_dump(mode="json"), {(): Location("recipe")}, "recipe")
    elif recipe is None and checkpoint is not None:
        base = LocatedMapping(
            checkpoint.recipe.model_dump(mode="json"), {(): Location(str(checkpoint.path))}, str(checkpoint.path)
        )
    else:
        kind = (data or "").partition(":")[0]
        base = resolve_recipe_source(recipe if recipe is not None else DEFAULT_PRESET.get(kind, "imagenet"))
    values: dict[str, Any] = {}
    if overrides:
        values.update(parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides))
    values.update({key: value for key, value in options.items() if value is not None})
    if values.get("epochs") is not None and "steps" not in values:
        values["steps"] = None  # asking for epochs replaces a preset's step count (cifar's 64k)
    if values:
        apply_recipe_overrides(base, values)
    return validate_recipe(base)


def evaluate(
    checkpoint: str | Path | nn.Module,
    data: str | None = None,
    *,
    split: str = "test",
    spec: Spec | None = None,
    recipe: Recipe | None = None,
    batch_size: int = 256,
    device: str | None = None,
    ema: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint (or a live model with its ``spec``) on ``data``: ``loss``, ``acc1``,
    ``acc5``, ``count``, ``per_class``, ``confusion`` and ``class_names``, as plain data."""
    from .evaluation import evaluate as run

    return run(checkpoint, data, split=split, spec=spec, recipe=recipe, batch_size=batch_size, device=device, ema=ema)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """A run's checkpoint: ``.spec``, ``.recipe``, ``.model`` (state_dict), ``.state``, ``.data``."""
    from .checkpoint import load_checkpoint as load

    return load(path)


def model_from_checkpoint(path: str | Path, *, ema: bool = False) -> nn.Module:
    """The live network a checkpoint was trained as, with its weights, in eval mode."""
    from .checkpoint import model_from_checkpoint as rebuild

    return rebuild(path, ema=ema)


__all__ = [
    "PRESETS",
    "Recipe",
    "evaluate",
    "load_checkpoint",
    "load_recipe",
    "model_from_checkpoint",
    "preset",
    "train",
]


class _CallablePackage(types.ModuleType):
    """``resnet_gen.train`` is this package and, called, :func:`train`: ``rg.train(spec, ...)``
    works although importing the package puts it, not the function, at ``resnet_gen.train``."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
