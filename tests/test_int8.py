"""The int8 form (``resnet-gen build --target int8``): post-training static quantisation of the
inference form through PyTorch's FX graph mode with the x86 QConfig mapping, calibrated on the
caller's images. Held to the float model it came from: a CIFAR-style net trained here on
scikit-learn's digits keeps its accuracy and its predictions, and torchvision's resnet18 keeps its
outputs; the file needs only torch and its TorchScript copy loads without resnet-gen."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torchvision
from emit_support import import_source
from torch import nn
from torch_helpers import randomize

import resnet_gen as rg
from resnet_gen.data import open_dataset
from resnet_gen.emit.source import emit_source

_count = itertools.count()
DIGITS = ["input.channels=1", "input.size=8", "head.num_classes=10"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a machine shared with other jobs, two spinning OpenMP threads per
    process make these small nets many times slower; the results are the same either way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def int8_module(name: str, overrides: list[str] | None = None) -> ModuleType:
    spec = rg.load_spec(name, overrides or [])
    return import_source(emit_source(rg.lower(spec), target="int8"), f"int8_{spec.name}_{next(_count)}")


def quantised_convs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, torch.ao.nn.quantized.Conv2d)]


def digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split as two tensors (1x8x8 images, normalised as the data reader does)."""
    data = open_dataset("digits", split)
    images, labels = zip(*(data[index] for index in range(len(data))), strict=True)
    return torch.stack(images), torch.tensor(labels)


def accuracy_and_predictions(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        got = torch.cat([model(batch).argmax(1) for batch in images.split(120)])
    return (got == labels).float().mean().item(), got


def test_digits_keep_their_accuracy() -> None:
    """cifar_resnet20 at 8x8 on 1-channel digits, trained by a plain loop written out here; its
    int8 form, calibrated on 256 training images, is compared with the float inference form on the
    360 test images: top-1 accuracy drops by at most 2 points and 97% of predictions agree."""
    torch.manual_seed(0)
    spec = rg.load_spec("cifar_resnet20", DIGITS)
    trained = rg.build(spec)
    train_images, train_labels = digits("train")
    test_images, test_labels = digits("test")
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    epochs, batch = 8, 64
    steps = (len(train_images) + batch - 1) // batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=epochs * steps)
    trained.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for chosen in torch.randperm(len(train_images), generator=generator).split(batch):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(trained(train_images[chosen]), train_labels[chosen])
            loss.backward()
            optimizer.step()
            schedule.step()
    trained.eval()

    module = int8_module("cifar_resnet20", DIGITS)
    float_model = module.ResNet(num_classes=10)
    float_model.load_state_dict(module.fold_batch_norms(float_model, trained.state_dict()))
    calibration = list(train_images[:256].split(64))
    quantised = module.cifar_resnet20(calibration=calibration, num_classes=10, checkpoint=trained.state_dict())
    assert len(quantised_convs(quantised)) == 19  # the stem conv and 2 in each of the 9 blocks

    float_accuracy, float_predictions = accuracy_and_predictions(float_model, test_images, test_labels)
    int8_accuracy, int8_predictions = accuracy_and_predictions(quantised, test_images, test_labels)
    trained_accuracy, _ = accuracy_and_predictions(trained, test_images, test_labels)
    print(f"digits top-1: float {float_accuracy:.4f}, int8 {int8_accuracy:.4f}")
    assert abs(float_accuracy - trained_accuracy) < 0.01  # folding changes (almost) nothing
    assert float_accuracy > 0.9
    assert int8_accuracy >= float_accuracy - 0.02
    assert (int8_predictions == float_predictions).float().mean().item() >= 0.97


def test_resnet18_weights_are_per_channel_int8_and_outputs_follow_torchvision(tmp_path: Path) -> None:
    """torchvision's resnet18 with random weights and norm statistics: the int8 form's convs hold
    int8 weights quantised per output channel, its logits stay within 10% (relative to the largest)
    of torchvision's float ones, and its TorchScript copy gives the same outputs in a process that
    imports only torch."""
    reference = torchvision.models.resnet18()
    randomize(reference, seed=7)
    reference.eval()
    module = int8_module("resnet18")
    generator = torch.Generator().manual_seed(0)
    calibration = [torch.randn(4, 3, 64, 64, generator=generator) for _ in range(4)]
    quantised = module.resnet18(calibration=calibration, checkpoint=reference.state_dict())
    convs = quantised_convs(quantised)
    assert len(convs) == 20  # 17 convs in the body and stem, 3 downsample projections
    for conv in convs:
        weight = conv.weight()
        assert weight.dtype == torch.qint8
        assert weight.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine)
        assert weight.q_per_channel_scales().numel() == conv.out_channels
    x = torch.randn(4, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected = reference(x)
        got = quantised(x)
    assert got.dtype == torch.float32 and got.shape == (4, 1000)
    assert ((got - expected).abs().max() / expected.abs().max()).item() < 0.1

    saved = tmp_path / "resnet18_int8.pt"
    torch.jit.save(torch.jit.script(quantised), str(saved))
    torch.save(x, tmp_path / "x.pt")
    code = (
        "import sys, torch; model = torch.jit.load(sys.argv[1]); x = torch.load(sys.argv[2]);"
        " torch.save(model(x), sys.argv[3]); assert 'resnet_gen' not in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(saved), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), got, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet50d", "seresnet50", "resnetv2_50d"])
def test_other_layouts_quantise(name: str) -> None:
    """Deep stems, avg-down shortcuts, SE and pre-activation convert and stay near the float model."""
    module = int8_module(name)
    float_model = module.ResNet()
    randomize(float_model, seed=1)
    generator = torch.Generator().manual_seed(2)
    calibration = [torch.randn(2, 3, 64, 64, generator=generator) for _ in range(3)]
    quantised = module.quantize_int8(float_model, calibration)
    assert quantised_convs(quantised)
    x = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected, got = float_model(x), quantised(x)
        frozen = module.freeze_int8(quantised)(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() < 0.25
    torch.testing.assert_close(frozen, got, rtol=0, atol=0)


def test_frozen_int8_gives_the_same_outputs_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """``freeze_int8`` runs the quantised graph as frozen TorchScript with the same outputs, at a
    CIFAR net's own size; where TorchScript cannot compile it, the FX graph comes back."""
    module = int8_module("cifar_resnet56")
    float_model = module.ResNet()
    randomize(float_model, seed=3)
    generator = torch.Generator().manual_seed(4)
    calibration = [torch.randn(4, 3, 32, 32, generator=generator) for _ in range(2)]
    quantised = module.quantize_int8(float_model, calibration)
    frozen = module.freeze_int8(quantised)
    assert isinstance(frozen, torch.jit.ScriptModule)
    x = torch.randn(3, 3, 32, 32, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), quantised(x), rtol=0, atol=0)

    def refuse(*args: object, **kwargs: object) -> object:
        raise RuntimeError("TorchScript cannot compile this model")

    monkeypatch.setattr(torch.jit, "script", refuse)
    assert module.freeze_int8(quantised) is quantised


def test_no_calibration_is_a_clear_error() -> None:
    module = int8_module("resnet18")
    with pytest.raises(ValueError, match="calibration: no batches"):
        module.resnet18(calibration=[])


def test_source_needs_only_torch_and_the_cli_writes_it(tmp_path: Path) -> None:
    spec = rg.load_spec("resnet18")
    text = emit_source(rg.lower(spec), "specs/resnet18.yaml", target="int8")
    assert text == emit_source(rg.lower(spec), "specs/resnet18.yaml", target="int8")
    assert "--target int8" in text.splitlines()[0]
    tree = ast.parse(text)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} <= {"torch", "collections", "copy", "typing"}
    assert "def fuse_for_cpu" not in text
    run = [sys.executable, "-m", "resnet_gen", "build", "--target", "int8", "resnet18"]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "wrote out/int8/resnet18.py"  # ad-hoc output goes to out/
    assert (tmp_path / "out" / "int8" / "resnet18.py").read_text(encoding="utf-8") == text


def test_export_int8_calibrates_on_a_data_source(tmp_path: Path) -> None:
    """resnet-gen export --format int8 --calibration digits: a TorchScript file that computes what
    the int8 form calibrated in-process on the same images computes; bad input leaves nothing."""
    from resnet_gen.int8_export import calibration_batches, quantised_model

    sets = [arg for item in DIGITS for arg in ("--set", item)]
    out = tmp_path / "digits_int8.pt"
    run = [sys.executable, "-m", "resnet_gen", "export", "cifar_resnet20", *sets, "--format", "int8"]
    done = subprocess.run(
        [*run, "--calibration", "digits", "--calibration-images", "64", "-o", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out} (int8, calibrated on 64 images of digits)"
    spec = rg.load_spec("cifar_resnet20", DIGITS)
    torch.manual_seed(0)  # the export's initialisation when no --weights are given
    live = rg.build(spec)
    expected_model = quantised_model(spec, live.state_dict(), calibration_batches(spec, "digits", 64))
    x = digits("test")[0][:16]
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out))(x), expected_model(x), rtol=0, atol=0)

    bad = tmp_path / "bad.pt"
    wrong_channels = subprocess.run(
        [*run[:5], "--format", "int8", "--calibration", "digits", "-o", str(bad)], capture_output=True, text=True
    )
    assert wrong_channels.returncode == 1
    assert wrong_channels.stderr.strip().splitlines()[-1] == (
        "error: --calibration digits: images have 1 channel(s), the network takes 3;"
        " use --set input.channels=1 or other data"
    )
    no_data = subprocess.run([*run, "-o", str(bad)], capture_output=True, text=True)
    assert no_data.returncode == 2 and "--format int8 needs --calibration SOURCE" in no_data.stderr
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["digits_int8.pt"]


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("fuse_for_cpu", "inference"),
        ("freeze_for_cpu", "inference"),
        ("operator", "inference"),
        ("quantize_int8", "int8"),
        ("freeze_int8", "int8"),
        ("copy", "int8"),
    ],
)
def test_names_the_deployment_files_define_are_refused(name: str, target: str) -> None:
    """A spec named like a function or import the inference or int8 file defines cannot replace it."""
    from resnet_gen.emit.values import EmitError

    spec = rg.load_spec("resnet18").model_copy(update={"name": name})
    with pytest.raises(EmitError, match="name"):
        emit_source(rg.lower(spec), target=target)
