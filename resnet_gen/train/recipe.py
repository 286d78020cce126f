"""Training recipes: pydantic models validated like specs, named presets, and loading a recipe
from a preset name or a YAML file with ``--set train.KEY=VALUE`` overrides and located errors."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import Location, SpecError, located
from ..spec.load import parse_key_path, parse_overrides
from ..spec.yaml_source import LocatedMapping, format_path, read_yaml_file

PositiveFloat = Annotated[float, Field(gt=0)]


class _Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptimizerRecipe(_Recipe):
    """The optimizer and its settings."""

    type: Literal["sgd", "adam", "adamw"] = Field(
        default="sgd", description="`sgd` (with momentum), `adam` or `adamw`."
    )
    lr: PositiveFloat = Field(default=0.1, description="Learning rate for the global batch.")
    momentum: Annotated[float, Field(ge=0, lt=1)] = Field(default=0.9, description="`sgd` only: momentum.")
    nesterov: bool = Field(default=False, description="`sgd` only: Nesterov momentum.")
    weight_decay: Annotated[float, Field(ge=0)] = Field(
        default=1e-4, description="L2 weight decay (decoupled for `adamw`)."
    )
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = Field(
        default=(0.9, 0.999), description="`adam` and `adamw` only: the moment decay rates."
    )
    no_decay_norm_bias: bool = Field(
        default=False, description="Exclude norm weights and every bias (the 1-D parameters) from weight decay."
    )


class ScheduleRecipe(_Recipe):
    """How the learning rate changes, counted in epochs or in steps (iterations)."""

    type: Literal["constant", "step", "multistep", "cosine"] = Field(
        default="step",
        description="`step` (x gamma every step_size), `multistep` (x gamma at each milestone), `cosine`, `constant`.",
    )
    unit: Literal["epoch", "step"] = Field(default="epoch", description="What step_size, milestones and warmup count.")
    step_size: Annotated[int, Field(ge=1)] = Field(default=30, description="`step` only: the period.")
    gamma: Annotated[float, Field(gt=0, le=1)] = Field(default=0.1, description="`step`, `multistep`: the factor.")
    milestones: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, description="`multistep` only.")
    warmup: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Linear warm-up from lr x warmup_factor, in units."
    )
    warmup_factor: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.01, description="The warm-up's starting fraction of lr."
    )
    min_lr: Annotated[float, Field(ge=0)] = Field(default=0.0, description="`cosine` only: the final learning rate.")

    @model_validator(mode="after")
    def _milestones_rise(self) -> ScheduleRecipe:
        if self.type == "multistep" and (not self.milestones or self.milestones != sorted(set(self.milestones))):
            raise ValueError("milestones: a multistep schedule needs rising milestones, e.g. [32000, 48000]")
        return self


class AugmentRecipe(_Recipe):
    """Training-time augmentation (evaluation never augments)."""

    type: Literal["none", "crop_flip", "random_resized_crop"] = Field(
        default="none", description="`crop_flip` (pad and random crop), `random_resized_crop` (ImageNet) or `none`."
    )
    padding: Annotated[int, Field(ge=0, le=64)] = Field(
        default=4, description="`crop_flip` only: zero padding per side."
    )
    flip: bool = Field(default=True, description="Random horizontal flips (not for digits or text).")
    scale: tuple[PositiveFloat, PositiveFloat] = Field(
        default=(0.08, 1.0), description="`random_resized_crop`: area range."
    )
    ratio: tuple[PositiveFloat, PositiveFloat] = Field(
        default=(3 / 4, 4 / 3), description="`random_resized_crop`: aspect range."
    )


class EarlyStopping(_Recipe):
    """Stop when a validation metric has not improved for ``patience`` epochs."""

    metric: Literal["val_acc1", "val_acc5", "val_loss"] = "val_acc1"
    patience: Annotated[int, Field(ge=1)] = 5
    min_delta: Annotated[float, Field(ge=0)] = 0.0


class EmaRecipe(_Recipe):
    """An exponential moving average of the weights, evaluated and saved beside them."""

    decay: Annotated[float, Field(gt=0, lt=1)] = 0.999


class Recipe(_Recipe):
    """How to train a network: the optimizer, schedule, data handling and run options."""

    name: str = Field(default="custom", description="The preset this recipe started from, or a name of your own.")
    batch_size: Annotated[int, Field(ge=1, le=1 << 20)] = Field(
        default=256, description="The global batch (all processes)."
    )
    epochs: Annotated[int, Field(ge=1)] = Field(default=90, description="Epochs to train (unless `steps` is set).")
    steps: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Total iterations; overrides `epochs`.")
    optimizer: OptimizerRecipe = OptimizerRecipe()
    schedule: ScheduleRecipe = ScheduleRecipe()
    augment: AugmentRecipe = AugmentRecipe()
    normalize: Literal["dataset", "imagenet", "none"] = Field(default="dataset", description="Input normalisation.")
    eval_crop: Annotated[float, Field(gt=0, le=1)] = Field(
        default=1.0,
        description="Images of varying size: centre crop of this fraction at evaluation (0.875 for ImageNet).",
    )
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    class_weights: Literal["balanced"] | list[PositiveFloat] | None = Field(
        default=None, description="Loss weights per class, or `balanced` (inverse class frequency) for imbalanced data."
    )
    early_stopping: EarlyStopping | None = None
    best_metric: Literal["val_acc1", "val_acc5", "val_loss"] = Field(
        default="val_acc1", description="What `best.ckpt` keeps."
    )
    clip_grad_norm: PositiveFloat | None = Field(default=None, description="Clip the gradients' total norm to this.")
    gradient_checkpointing: bool = Field(
        default=False, description="Recompute each stage in the backward pass (less memory)."
    )
    amp: Literal["none", "bf16", "fp16"] = Field(
        default="none", description="Mixed precision; fp16 uses a gradient scaler."
    )
    channels_last: bool = False
    compile: bool = Field(default=False, description="Run the model through torch.compile.")
    ema: EmaRecipe | None = None
    sync_batchnorm: bool = Field(default=False, description="Under torchrun: batch statistics over all processes.")
    seed: Annotated[int, Field(ge=0, lt=1 << 31)] = 0
    deterministic: bool = Field(default=False, description="Deterministic algorithms only (slower on GPUs).")
    workers: Annotated[int, Field(ge=0, le=256)] = Field(default=0, description="Data loader worker processes.")
    log_every: Annotated[int, Field(ge=0)] = Field(default=0, description="Also log every N steps (0: once per epoch).")


PRESETS: dict[str, dict[str, Any]] = {
    # The seed document's ImageNet recipe: SGD, StepLR x0.1 every 30 epochs, 90 epochs, batch 256.
    "imagenet": {
        "name": "imagenet",
        "batch_size": 256,
        "epochs": 90,
        "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"type": "step", "unit": "epoch", "step_size": 30, "gamma": 0.1},
        "augment": {"type": "random_resized_crop", "flip": True},
        "normalize": "imagenet",
        "eval_crop": 0.875,
    },
    # He et al. 2015, section 4.2: batch 128, lr 0.1 / 10 at 32k and 48k iterations, stop at 64k.
    "cifar": {
        "name": "cifar",
        "batch_size": 128,
        "epochs": 182,
        "steps": 64000,
        "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"type": "multistep", "unit": "step", "milestones": [32000, 48000], "gamma": 0.1},
        "augment": {"type": "crop_flip", "padding": 4, "flip": True},
        "normalize": "dataset",
    },
    # A short run for 8x8 digits: no flips (a flipped 2 is no digit), one pixel of shift, cosine.
    "digits": {
        "name": "digits",
        "batch_size": 64,
        "epochs": 15,
        "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
        "schedule": {"type": "cosine", "unit": "step", "warmup": 50},
        "augment": {"type": "crop_flip", "padding": 1, "flip": False},
        "normalize": "dataset",
    },
}
DEFAULT_PRESET = {"digits": "digits", "cifar10": "cifar", "cifar100": "cifar", "mnist": "digits"}
_SET = Location("--set")


def preset(name: str) -> Recipe:
    return Recipe.model_validate(PRESETS[name])


def load_recipe(source: str | Path | None, overrides: dict[str, Any] | list[str] | None = None) -> Recipe:
    """A preset name (``imagenet``, ``cifar``, ``digits``) or a YAML file, with overrides applied.

    A file may start from a preset with ``extends: cifar``; overrides are dotted paths inside the
    recipe (``optimizer.lr``). Every problem is a located one-line message in a SpecError."""
    mapping = resolve_recipe_source(source)
    if overrides:
        values = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides)
        apply_recipe_overrides(mapping, values)
    return validate_recipe(mapping)


def resolve_recipe_source(source: str | Path | None) -> LocatedMapping:
    text = "custom" if source is None else str(source)
    if source is None or text in PRESETS:
        data = copy.deepcopy(PRESETS.get(text, {}))
        return LocatedMapping(data, {(): Location(f"recipe {text}")}, f"recipe {text}")
    path = Path(text).expanduser()
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        close = difflib.get_close_matches(text, list(PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"{text}: no recipe file and no preset of that name (presets: {', '.join(PRESETS)}){hint}")
    mapping = read_yaml_file(path, text)
    parent = mapping.data.pop("extends", None)
    if parent is None:
        return mapping
    if parent not in PRESETS:
        where = mapping.where(("extends",))
        raise SpecError(located(where, "extends", f"unknown preset {parent!r}; use one of {', '.join(PRESETS)}"))
    return LocatedMapping(_merge(copy.deepcopy(PRESETS[parent]), mapping.data), mapping.locations, mapping.source)


def apply_recipe_overrides(mapping: LocatedMapping, values: dict[str, Any]) -> None:
    """Set each dotted path (mappings on the way are created); the models judge the values."""
    for text, value in values.items():
        path = parse_key_path(text)
        node: Any = mapping.data
        for depth, part in enumerate(path):
            if not isinstance(node, dict) or not isinstance(part, str):
                shown = format_path(path[:depth]) or "the recipe"
                raise SpecError(located(_SET, f"train.{text}", f"{shown} is not a mapping; set it whole"))
            if depth == len(path) - 1:
                node[part] = copy.deepcopy(value)
            else:
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
        for end in range(1, len(path) + 1):
            if end == len(path) or path[:end] not in mapping.locations:
                mapping.locations[path[:end]] = _SET


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(base[key], value)
        else:
            base[key] = value
    return base


def validate_recipe(mapping: LocatedMapping) -> Recipe:
    try:
        return Recipe.model_validate(mapping.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            path = tuple(p for p in error["loc"] if not (isinstance(p, str) and "[" in p))
            where = mapping.where(path)
            key = f"train.{format_path(path)}" if where == _SET else format_path(path)
            problems.append(located(where, key, _message(error, path)))
        raise SpecError(list(dict.fromkeys(problems))) from None


def _message(error: Any, path: tuple[Any, ...]) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        fields = _fields_at(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), fields, n=1)
        return f"unknown key {path[-1]!r}; " + (
            f"did you mean {close[0]!r}?" if close else f"the keys here are {', '.join(fields)}"
        )
    text = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return text
    shown = repr(value) if not isinstance(value, dict) else "a mapping"
    return f"{text[0].lower()}{text[1:]} (got {shown[:60]})"


def _fields_at(path: tuple[Any, ...]) -> list[str]:
    model: Any = Recipe
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        found = [
            a
            for a in getattr(annotation, "__args__", (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not found:
            return []
        model = found[0]
    return sorted(model.model_fields)


def recipe_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """Split ``--set`` items into the spec's and the recipe's (``train.KEY=VALUE``, prefix removed)."""
    spec_items, recipe_items = [], []
    for item in overrides:
        if item.startswith("train."):
            recipe_items.append(item.removeprefix("train."))
        else:
            spec_items.append(item)
    return spec_items, recipe_items
