"""Checkpoints: resuming is bit-identical, a checkpoint holds the resolved spec and recipe, and its
weights load into the emitted source and into torchvision's model of the same name."""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from emit_support import import_source
from train_support import SMALL_RESNET18, digits_spec

import resnet_gen as rg

# The digits recipe (crop and shift augmentation, cosine schedule with warm-up) and a drop-path
# rate, so the data order, the per-sample augmentation seeds and torch's RNG all have to resume.
RECIPE = {"batch_size": 128, "epochs": 3, "schedule.warmup": 3}
TOTAL, STOP = 20, 7  # 12 steps an epoch: the stop falls mid-epoch, the end in the second epoch


def test_resume_is_bit_identical(tmp_path: Path) -> None:
    spec = digits_spec(["drop_path=0.1"])
    straight = rg.train(spec, data="digits", recipe="digits", out=tmp_path / "a", overrides=RECIPE, max_steps=TOTAL)
    first = rg.train(spec, data="digits", recipe="digits", out=tmp_path / "b", overrides=RECIPE, max_steps=STOP)
    assert first["global_step"] == STOP and first["stopped"] == "max_steps"
    resumed = rg.train(resume=tmp_path / "b" / "last.ckpt", max_steps=TOTAL)
    assert resumed["global_step"] == TOTAL
    a = rg.train.load_checkpoint(tmp_path / "a" / "last.ckpt")
    b = rg.train.load_checkpoint(tmp_path / "b" / "last.ckpt")
    assert a.model.keys() == b.model.keys()
    assert all(torch.equal(a.model[key], b.model[key]) for key in a.model)
    for group_a, group_b in zip(
        a.state["optimizer"]["state"].values(), b.state["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(group_a["momentum_buffer"], group_b["momentum_buffer"])
    # The epoch that the stop cut in two is logged as one, with the same numbers.
    assert [row["train_loss"] for row in straight["history"]] == [row["train_loss"] for row in resumed["history"]]


def test_checkpoint_carries_spec_recipe_and_loads_elsewhere(tmp_path: Path) -> None:
    spec = rg.load_spec("resnet18", SMALL_RESNET18)
    rg.train(spec, data="synthetic:32", recipe="imagenet", out=tmp_path, batch_size=16, max_steps=2, validate=False)
    checkpoint = rg.train.load_checkpoint(tmp_path / "last.ckpt")
    assert checkpoint.spec == spec
    assert checkpoint.recipe.optimizer.lr == 0.1 and checkpoint.recipe.batch_size == 16
    assert checkpoint.data == "synthetic:32"
    reference = torchvision.models.resnet18(num_classes=10)
    reference.load_state_dict(checkpoint.model, strict=True)
    emitted = import_source(rg.emit(spec), "emitted_trained_resnet18")
    standalone = getattr(emitted, spec.name)()
    standalone.load_state_dict(checkpoint.model, strict=True)
    rebuilt = rg.train.model_from_checkpoint(tmp_path / "last.ckpt")
    images = torch.randn(2, 3, 16, 16)
    reference.eval()
    standalone.eval()
    with torch.no_grad():
        expected = reference(images)
        torch.testing.assert_close(rebuilt(images), expected)
        torch.testing.assert_close(standalone(images), expected)


def test_bf16_autocast_on_cpu_runs_and_the_loss_falls() -> None:
    changes = {"amp": "bf16", "log_every": 1, "batch_size": 64, "schedule.type": "constant", "schedule.warmup": 0}
    result = rg.train(digits_spec(), data="digits", recipe="digits", overrides=changes, max_steps=12, validate=False)
    losses = [row["loss"] for row in result["steps"]]
    assert len(losses) == 12
    assert sum(losses[-3:]) < 0.75 * sum(losses[:3])


def test_fp16_autocast_steps_through_the_scaler(tmp_path: Path) -> None:
    # Two small steps only: float16 convolutions on a CPU are slow.
    changes = {"amp": "fp16", "batch_size": 16}
    rg.train(
        digits_spec(), data="digits", recipe="digits", out=tmp_path, overrides=changes, max_steps=2, validate=False
    )
    checkpoint = rg.train.load_checkpoint(tmp_path / "last.ckpt")
    assert checkpoint.state["scaler"]["scale"] > 0
    assert all(torch.isfinite(value).all() for value in checkpoint.model.values() if value.is_floating_point())
