"""Spec-made networks inside timm: ``timm.create_model`` through ``resnet_gen.timm.register``,
timm's data, optimizer, EMA, checkpoint and training helpers on the live and emitted models, and
the same answers as timm's own ResNets where the architecture is the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
from emit_support import copy_weights, emitted_model
from PIL import Image
from timm.data import Mixup, create_transform, resolve_data_config
from timm.loss import SoftTargetCrossEntropy
from timm.models import adapt_input_conv, load_checkpoint
from timm.optim import create_optimizer_v2
from timm.optim._param_groups import param_groups_layer_decay
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch_helpers import randomize

from resnet_gen import build, load_spec
from resnet_gen import timm as rg_timm

SIZE = 64
# Basic, bottleneck, pre-activation, SE and a pruned net: each timm interface test runs on these.
SPECS = ["resnet18", "resnet50", "resnetv2_50", "seresnet50", "ecaresnet50d_pruned"]
KWARGS = {"num_classes": 7, "in_chans": 1, "drop_path_rate": 0.1, "drop_rate": 0.2}
SET = {"head.num_classes": 7, "input.channels": 1, "drop_path": 0.1, "head.dropout": 0.2}


def _name(spec: str) -> str:
    return rg_timm.register(spec, f"rg_test_{spec}")


def _forms(spec: str) -> list[nn.Module]:
    """The live and the emitted network of ``spec`` with timm's kwargs, the same weights."""
    live = timm.create_model(_name(spec), **KWARGS)
    randomize(live)
    emitted = emitted_model(load_spec(spec, SET))
    copy_weights(live, emitted)
    return [live, emitted]


@pytest.mark.parametrize("spec", SPECS)
def test_create_model_is_the_spec_with_those_overrides(spec: str) -> None:
    ours = timm.create_model(_name(spec), **KWARGS)
    reference = build(load_spec(spec, SET))
    assert type(ours) is type(reference) and ours.plan == reference.plan  # type: ignore[attr-defined]
    assert ours.num_classes == 7 and ours.get_classifier().out_features == 7  # type: ignore[union-attr]
    assert ours.pretrained_cfg["input_size"][0] == 1  # type: ignore[index]


@pytest.mark.parametrize("spec", SPECS)
def test_timm_helpers_work_on_live_and_emitted(spec: str, tmp_path: Path) -> None:
    x = torch.randn(2, 1, SIZE, SIZE)
    outputs = []
    for model in _forms(spec):
        config = resolve_data_config(model=model)
        assert config["input_size"] == (1, 224, 224) and len(config["mean"]) == 1
        image = Image.fromarray((torch.rand(300, 260) * 255).to(torch.uint8).numpy(), mode="L")
        assert create_transform(**config)(image).shape == (1, 224, 224)
        optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.7)
        scales = [group["lr_scale"] for group in optimizer.param_groups]
        assert min(scales) < max(scales) == 1.0
        ema = ModelEmaV3(model, decay=0.5)
        ema.update(model)
        model.eval()
        with torch.no_grad():
            outputs.append(model(x))
            torch.testing.assert_close(ema.module(x), outputs[-1])
            features = model.forward_features(x)
            pooled = model.forward_head(features, pre_logits=True)
            assert pooled.shape == (2, model.num_features)
            torch.testing.assert_close(model.get_classifier()(pooled), outputs[-1])
        torch.save(model.state_dict(), tmp_path / "checkpoint.pth")
        fresh = timm.create_model(_name(spec), **KWARGS)
        load_checkpoint(fresh, str(tmp_path / "checkpoint.pth"))
        with torch.no_grad():
            torch.testing.assert_close(fresh.eval()(x), outputs[-1])
        model.reset_classifier(3, "max")
        assert model(x).shape == (2, 3) and model.pretrained_cfg["num_classes"] == 3
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features) and model.get_classifier(name_only=True) == "fc"
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)


@pytest.mark.parametrize("spec", SPECS)
def test_live_and_emitted_answer_timms_calls_alike(spec: str) -> None:
    live, emitted = _forms(spec)
    assert emitted.pretrained_cfg == live.pretrained_cfg
    assert emitted.feature_info == live.feature_info
    for coarse in (False, True):
        assert emitted.group_matcher(coarse) == live.group_matcher(coarse)
    assert emitted.no_weight_decay() == live.no_weight_decay() == set()
    assert (emitted.num_classes, emitted.num_features) == (live.num_classes, live.num_features)


@pytest.mark.parametrize("spec", ["resnet18", "resnet50", "seresnet50", "resnet50d"])
def test_same_answers_as_timms_own_model(spec: str) -> None:
    """Where timm has the same architecture, its helpers see the same model in ours."""
    name = _name(spec)
    ours, theirs = timm.create_model(name), timm.create_model(spec)
    keys = ("input_size", "mean", "std", "first_conv", "classifier", "pool_size")
    assert {k: ours.pretrained_cfg[k] for k in keys} == {k: theirs.pretrained_cfg[k] for k in keys}
    # Interpolation and crop belong to a set of weights (timm's default tags use other recipes):
    # ours are timm's ResNet defaults, torchvision's evaluation transform.
    base = timm.models.resnet._cfg()
    assert {k: ours.pretrained_cfg[k] for k in ("interpolation", "crop_pct")} == {
        k: base[k] for k in ("interpolation", "crop_pct")
    }
    config, their_config = resolve_data_config(model=ours), resolve_data_config(model=theirs)
    assert [config[k] for k in ("input_size", "mean", "std")] == [
        their_config[k] for k in ("input_size", "mean", "std")
    ]

    # Layer-wise LR decay puts every parameter in the same group with the same scale.
    def groups(model: nn.Module) -> list[tuple[float, list[int]]]:
        out = param_groups_layer_decay(model, weight_decay=0.05, layer_decay=0.7)
        return sorted((g["lr_scale"], sorted(p.numel() for p in g["params"])) for g in out)

    assert groups(ours) == groups(theirs)
    options = {"features_only": True, "out_indices": (1, 2, 3, 4), "output_stride": 16}
    ours_features, theirs_features = timm.create_model(name, **options), timm.create_model(spec, **options)
    for accessor in ("channels", "reduction", "module_name"):
        assert getattr(ours_features.feature_info, accessor)() == getattr(theirs_features.feature_info, accessor)()
    assert [f.shape for f in ours_features(torch.randn(1, 3, SIZE, SIZE))] == [
        f.shape for f in theirs_features(torch.randn(1, 3, SIZE, SIZE))
    ]


def test_pretrained_from_a_local_file(tmp_path: Path) -> None:
    reference = torchvision.models.resnet50()
    randomize(reference, seed=5)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    name = _name("resnet50")
    ours = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    assert ours.pretrained_cfg["file"] == str(path)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), reference.eval()(x), rtol=0, atol=1e-5)
    adapted = timm.create_model(
        name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, in_chans=1, num_classes=4
    )
    torch.testing.assert_close(adapted.conv1.weight, adapt_input_conv(1, reference.conv1.weight.detach()))
    assert torch.equal(adapted.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
    assert adapted.fc.out_features == 4
    with pytest.raises(ValueError, match=r"pretrained=True needs a local weights file: pass pretrained_cfg_overlay"):
        timm.create_model(name, pretrained=True)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match=r"rg_test_resnet18: got img_size, which resnet-gen specs do not take"):
        timm.create_model(_name("resnet18"), img_size=32)
    with pytest.raises(ValueError, match=r"timm already has a model named 'resnet18'"):
        rg_timm.register("resnet18")
    with pytest.raises(FileNotFoundError, match=r"not a folder of spec files"):
        rg_timm.register_folder("no/such/folder")


def test_register_a_folder_and_the_catalog(tmp_path: Path) -> None:
    (tmp_path / "tiny_net.yaml").write_text(
        "extends: resnet18\nstages:\n  - {blocks: 1, width: 16}\n  - {blocks: 1, width: 32, stride: 2}\n"
    )
    assert rg_timm.register_folder(tmp_path, prefix="my_") == ["my_tiny_net"]
    model = timm.create_model("my_tiny_net", num_classes=2)
    assert model(torch.randn(1, 3, SIZE, SIZE)).shape == (1, 2)
    names = rg_timm.register_catalog()
    assert "rg_resnet50" in names and all(timm.is_model(name) for name in names)


@pytest.mark.parametrize("spec", ["resnet18", "resnetv2_50"])
def test_two_training_steps_with_timms_factories(spec: str) -> None:
    """A train_one_epoch-style loop: timm's mixup, loss, optimizer and scheduler, two steps,
    once plainly and once with gradient checkpointing, live and emitted: the same losses."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 4, 1, SIZE, SIZE, generator=generator)
    labels = torch.randint(0, 7, (2, 4), generator=generator)
    runs = []
    for model in _forms(spec):
        start = {k: v.clone() for k, v in model.state_dict().items()}
        for checkpointing in (False, True):
            model.load_state_dict(start)
            model.set_grad_checkpointing(checkpointing)
            mixup = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=7)
            loss_fn = SoftTargetCrossEntropy()
            optimizer = create_optimizer_v2(model, "sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
            scheduler, _ = create_scheduler_v2(optimizer, "cosine", num_epochs=2, warmup_epochs=0)
            model.train()
            losses = []
            torch.manual_seed(1)
            np.random.seed(1)  # mixup draws its mixing factors from numpy
            for step in range(2):
                x, y = mixup(images[step].clone(), labels[step].clone())
                torch.manual_seed(10 + step)  # the same drop-path masks in every run
                loss = loss_fn(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step_update(num_updates=step + 1)
                losses.append(loss.item())
            scheduler.step(1)
            assert all(torch.isfinite(torch.tensor(losses)))
            assert not torch.equal(model.state_dict()["fc.weight"], start["fc.weight"])
            runs.append(losses)
    for losses in runs[1:]:
        assert losses == pytest.approx(runs[0], rel=1e-5)
