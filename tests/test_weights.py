"""Loading local checkpoints made here from randomly initialised torchvision and timm models."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from conftest import cli_env
from safetensors.torch import save_file
from timm.models import adapt_input_conv
from torch import nn
from torch_helpers import randomize
from torchvision.models.feature_extraction import create_feature_extractor

import resnet_gen as rg
from resnet_gen.convert.timm_resnetv2 import to_timm
from resnet_gen.weights.adapt import adapt_input_conv as adapt_first_conv

DEPTHS = [1, 1, 2, 2]
SHALLOW = [f"stages[{index}].blocks={blocks}" for index, blocks in enumerate(DEPTHS)]
SIZE = 35


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading never downloads: any connection attempt fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_weights tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _torchvision(name: str, seed: int = 0) -> nn.Module:
    block = torchvision.models.resnet.BasicBlock if name == "resnet18" else torchvision.models.resnet.Bottleneck
    model = torchvision.models.resnet.ResNet(block, DEPTHS).double()
    randomize(model, seed)
    return model.eval()


def _ours(name: str, *overrides: str, **backbone: object) -> nn.Module:
    return rg.build(rg.load_spec(name, [*SHALLOW, *overrides]), **backbone).double().eval()


def _image(channels: int = 3) -> torch.Tensor:
    return torch.randn(2, channels, SIZE, SIZE, dtype=torch.float64)


def test_torchvision_checkpoint_file_loads_completely(tmp_path: Path) -> None:
    reference = _torchvision("resnet50")
    path = tmp_path / "tv.pth"
    torch.save(reference.state_dict(), path)
    ours = _ours("resnet50")
    report = rg.load_weights(ours, path)
    assert report.layout == "torchvision/timm resnet"
    assert set(report.loaded) == set(ours.state_dict()) and not (report.adapted or report.skipped or report.missing)
    x = _image()
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-10)


def test_timm_safetensors_and_training_checkpoint_wrappers(tmp_path: Path) -> None:
    reference = timm.create_model("resnet50d", layers=DEPTHS).double()
    randomize(reference, 1)
    reference.eval()
    flat = tmp_path / "timm.safetensors"
    save_file({key: value.contiguous() for key, value in reference.state_dict().items()}, flat)
    wrapped = tmp_path / "trained.pt"
    torch.save({"epoch": 90, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, wrapped)
    x = _image()
    for path in (flat, wrapped):
        ours = _ours("resnet50_d")
        report = rg.load_weights(ours, path)
        assert not (report.adapted or report.skipped or report.missing), path
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-10)


def test_timm_resnetv2_layout_is_mapped(tmp_path: Path) -> None:
    reference = timm.create_model("resnetv2_50", layers=DEPTHS).double()
    randomize(reference, 2)
    reference.eval()
    path = tmp_path / "v2.pth"
    torch.save(reference.state_dict(), path)
    ours = _ours("resnetv2_50")
    report = rg.load_weights(ours, path)
    assert report.layout == "timm resnetv2"
    assert set(report.loaded) == set(ours.state_dict()) and not (report.skipped or report.missing)
    x = _image()
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-10)
    # And back: our weights in timm's layout load strictly into timm's model.
    reference.load_state_dict(to_timm(ours.state_dict(), ours.plan))


@pytest.mark.parametrize("channels", [1, 2, 4, 7])
def test_first_conv_adapts_to_input_channels_as_timm(channels: int) -> None:
    reference = _torchvision("resnet18")
    ours = _ours("resnet18", f"input.channels={channels}")
    report = rg.load_weights(ours, reference.state_dict())
    assert [key for key, _ in report.adapted] == ["conv1.weight"] and not report.missing
    # The same numbers as timm's adapt_input_conv (compared in float32, the precision timm computes in).
    weight = reference.conv1.weight.detach().float()
    expected = adapt_input_conv(channels, weight.clone(), base_chans=3)
    torch.testing.assert_close(adapt_first_conv(weight, channels)[0], expected, rtol=0, atol=0)
    torch.testing.assert_close(ours.conv1.weight.float(), expected, rtol=1e-5, atol=1e-7)
    # What the adaptation means: a grey image gives the RGB model's answer for that image in
    # all three channels; for N = 3k channels, k copies of an RGB image give the RGB answer.
    rgb = _image()
    if channels == 1:
        grey = rgb[:, :1]
        torch.testing.assert_close(ours(grey), reference(grey.expand(-1, 3, -1, -1)), rtol=0, atol=1e-10)
    elif channels % 3 == 0:
        torch.testing.assert_close(ours(rgb.repeat(1, channels // 3, 1, 1)), reference(rgb), rtol=0, atol=1e-10)


def test_classifier_of_another_size_is_skipped_and_kept() -> None:
    reference = _torchvision("resnet18")
    ours = _ours("resnet18", "head.num_classes=10")
    before = {key: value.clone() for key, value in ours.state_dict().items() if key.startswith("fc.")}
    report = rg.load_weights(ours, reference.state_dict())
    assert sorted(key for key, _ in report.skipped) == ["fc.bias", "fc.weight"]
    assert all("classifier" in why for _, why in report.skipped)
    assert sorted(report.missing) == ["fc.bias", "fc.weight"]
    for key, value in before.items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0)
    # Everything before the classifier is the reference's.
    features = create_feature_extractor(reference, return_nodes={"flatten": "pooled"})
    x = _image()
    pooled = features(x)["pooled"]
    torch.testing.assert_close(ours.forward_head(ours.forward_features(x)), ours.fc(pooled), rtol=0, atol=1e-10)


def test_backbone_model_reports_unused_keys() -> None:
    reference = _torchvision("resnet18")
    ours = _ours("resnet18", features_only=True, out_indices=[1, 2])
    report = rg.load_weights(ours, reference.state_dict())
    skipped = {key for key, _ in report.skipped}
    assert skipped == {k for k in reference.state_dict() if k.startswith(("layer3.", "layer4.", "fc."))}
    assert not report.missing and set(report.loaded) == set(ours.state_dict())


def test_errors_name_the_problem(tmp_path: Path) -> None:
    resnet18 = _torchvision("resnet18").state_dict()
    with pytest.raises(rg.WeightsError, match=r"shapes differ .* another architecture\? layer1\.0\.conv1\.weight"):
        rg.load_weights(_ours("resnet50"), resnet18)
    with pytest.raises(rg.WeightsError, match=r"adapting the first conv and classifier is off: conv1\.weight"):
        rg.load_weights(_ours("resnet18", "input.channels=1"), resnet18, adapt=False)
    with pytest.raises(rg.WeightsError, match=r"strict loading failed: missing fc\.weight"):
        rg.load_weights(_ours("resnet18", "head.num_classes=10"), resnet18, strict=True)
    whole = tmp_path / "whole.pth"
    torch.save(_torchvision("resnet18"), whole)
    with pytest.raises(rg.WeightsError, match=r"whole\.pth: holds pickled objects that weights_only=True refuses"):
        rg.load_weights(_ours("resnet18"), whole)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(rg.WeightsError, match=r"junk\.safetensors: not a readable safetensors file"):
        rg.load_weights(_ours("resnet18"), junk)
    with pytest.raises(rg.WeightsError, match=r"missing\.pth: no such file"):
        rg.load_weights(_ours("resnet18"), tmp_path / "missing.pth")


def test_weights_command_prints_the_report(tmp_path: Path, cli_path: Path) -> None:
    path = tmp_path / "tv.pth"
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, path)
    command = [str(cli_path), "weights", "resnet18", str(path), "--set", "input.channels=1"]
    result = subprocess.run(
        [*command, "--set", "head.num_classes=10"], capture_output=True, text=True, env=cli_env(), check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"loaded:     {len(state) - 3} tensors" in lines  # all but conv1 (adapted) and fc (skipped)
    assert "  conv1.weight: input channels 3 -> 1 (summed)" in lines
    assert "missing:    2 (these keep their initialisation)" in lines
    bad = subprocess.run(
        [str(cli_path), "weights", "resnet50", str(path)], capture_output=True, text=True, env=cli_env(), check=False
    )
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ") and "shapes differ" in bad.stderr
