"""Segmentation and multitask heads against independent references: torchvision's ResNets and
FeaturePyramidNetwork, the third seed's MedicalResNet and a U-Net expanding path written out
here; the emitted source against the live module; masks at the input's size for odd sizes;
a training step that lowers a segmentation loss; tracing; the diagram and the report."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
import torchvision
from diagram_parse import parse
from emit_support import assert_same_outputs, assert_same_structure, copy_weights, emitted_model
from torch import nn
from torch_helpers import count_macs, count_params, randomize
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FeaturePyramidNetwork

import resnet_gen as rg
from resnet_gen.data import DataError, DatasetInfo
from resnet_gen.export import export_onnx
from resnet_gen.train.fit import check_fit

FPN = "head={type: segmentation, num_classes: 5, decoder: {type: fpn, width: 32}}"
UNET = "head={type: segmentation, num_classes: 3, decoder: {type: unet, features: [0, 1, 2, 3, 4]}}"
MEDICAL = "head={type: multitask, num_classes: 2, decoder: transposed}"
ODD_SIZES = [(64, 64), (67, 45), (33, 50)]


def _spec(name: str, *overrides: str) -> rg.Spec:
    return rg.load_spec(name, list(overrides))


def _double(model: nn.Module, seed: int = 0) -> nn.Module:
    model = model.double()
    randomize(model, seed)
    return model


# --- torchvision's FPN ------------------------------------------------------------------------


class TorchvisionFPNSegmenter(nn.Module):
    """torchvision's ResNet body and FeaturePyramidNetwork, then the head the fpn decoder
    describes: each level upsampled (bilinear) to the finest and summed, a 1x1 conv, and a
    bilinear resize to the input."""

    def __init__(self, resnet: nn.Module, in_channels: list[int], width: int, classes: int) -> None:
        super().__init__()
        self.body = IntermediateLayerGetter(resnet, {f"layer{i}": str(i) for i in range(1, 5)})
        self.fpn = FeaturePyramidNetwork(in_channels, width)
        self.classifier = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = list(self.fpn(self.body(x)).values())
        out = levels[0]
        for level in levels[1:]:
            out = out + F.interpolate(level, size=out.shape[-2:], mode="bilinear", align_corners=False)
        return F.interpolate(self.classifier(out), size=x.shape[-2:], mode="bilinear", align_corners=False)


def _torchvision_keys(key: str) -> str:
    """Our state_dict key as the torchvision reference names it."""
    if key.startswith("decoder.lateral."):
        return (
            key.replace("decoder.lateral.", "fpn.inner_blocks.")
            .replace(".weight", ".0.weight")
            .replace(".bias", ".0.bias")
        )
    if key.startswith("decoder.smooth."):
        return (
            key.replace("decoder.smooth.", "fpn.layer_blocks.")
            .replace(".weight", ".0.weight")
            .replace(".bias", ".0.bias")
        )
    if key.startswith("decoder.classifier."):
        return key.removeprefix("decoder.")
    return f"body.{key}"


@pytest.mark.parametrize(("name", "factory", "channels"), [("resnet18", "resnet18", [64, 128, 256, 512])])
def test_fpn_decoder_equals_torchvision_feature_pyramid(name: str, factory: str, channels: list[int]) -> None:
    spec = _spec(name, FPN, "input.size=64")
    ours = _double(rg.build(spec))
    theirs = TorchvisionFPNSegmenter(getattr(torchvision.models, factory)(), channels, 32, 5).double()
    state = {_torchvision_keys(key): value for key, value in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)
    assert count_params(ours) == count_params(theirs) == rg.analyze(spec).params
    for size in ODD_SIZES[:2]:
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        for train in (False, True):
            ours.train(train)
            theirs.train(train)
            torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-10)


def test_resnet50_fpn_seg_counts_equal_torchvision() -> None:
    spec = rg.load_spec("resnet50_fpn_seg")
    with torch.device("meta"):
        ours = rg.build(spec)
        theirs = TorchvisionFPNSegmenter(torchvision.models.resnet50(), [256, 512, 1024, 2048], 256, 21)
    assert count_params(ours) == count_params(theirs) == rg.analyze(spec).params
    assert count_macs(ours, 3, (224, 224)) == count_macs(theirs, 3, (224, 224)) == rg.analyze(spec).macs
    assert [_torchvision_keys(key) for key in ours.state_dict()] == list(theirs.state_dict())


# --- the third seed's MedicalResNet -----------------------------------------------------------


class SeedMedicalResNet(nn.Module):
    """The third seed's MedicalResNet (resnet18, 1 input channel), with torchvision's resnet18
    for its ``resnet``. Its segmentation head ends in a Sigmoid; ours returns the logits (the
    sigmoid belongs to the loss, BCEWithLogitsLoss), so ``sigmoid`` leaves it out for comparing."""

    def __init__(self, num_classes: int = 2, in_channels: int = 1, sigmoid: bool = True) -> None:
        super().__init__()
        self.resnet = torchvision.models.resnet18(num_classes=num_classes)
        self.resnet.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.segmentation_head = nn.Sequential(
            nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(256),
            nn.ReLU(),
            nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 1, kernel_size=1),
            *([nn.Sigmoid()] if sigmoid else []),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_class = self.resnet.conv1(x)
        x_class = self.resnet.bn1(x_class)
        x_class = F.relu(x_class)
        x_class = self.resnet.maxpool(x_class)
        x_class = self.resnet.layer1(x_class)
        x_class = self.resnet.layer2(x_class)
        x_class = self.resnet.layer3(x_class)
        x_seg = self.resnet.layer4(x_class)
        x_class = self.resnet.avgpool(x_seg)
        x_class = torch.flatten(x_class, 1)
        class_output = self.resnet.fc(x_class)
        seg_output = self.segmentation_head(x_seg)
        return class_output, seg_output


def _seed_keys(key: str) -> str:
    return key.replace("decoder.layers.", "segmentation_head.") if key.startswith("decoder.") else f"resnet.{key}"


def test_medical_multitask_equals_the_seeds_medical_resnet() -> None:
    spec = rg.load_spec("medical_resnet18_multitask", ["input.size=64"])
    ours = _double(rg.build(spec))
    theirs = SeedMedicalResNet(sigmoid=False).double()
    theirs.load_state_dict({_seed_keys(key): value for key, value in ours.state_dict().items()}, strict=True)
    assert count_params(SeedMedicalResNet()) == count_params(ours) == rg.analyze(rg.load_spec(spec.name)).params
    x = torch.randn(2, 1, 64, 64, dtype=torch.float64)
    for train in (False, True):
        ours.train(train)
        theirs.train(train)
        logits, mask = ours(x)
        class_output, seg_output = theirs(x)
        torch.testing.assert_close(logits, class_output, rtol=0, atol=1e-10)
        # The seed's mask is at 1/8 of the input; ours is resized to the input.
        assert seg_output.shape[-2:] == (8, 8)
        expected = F.interpolate(seg_output, size=(64, 64), mode="bilinear", align_corners=False)
        torch.testing.assert_close(mask, expected, rtol=0, atol=1e-10)
    out = ours(x)
    assert isinstance(out, tuple) and out._fields == ("logits", "mask")  # type: ignore[attr-defined]


# --- a U-Net expanding path written out here ----------------------------------------------------


def _reference_unet_mask(
    features: list[torch.Tensor], weights: dict[str, torch.Tensor], size: tuple[int, int], train: bool
) -> torch.Tensor:
    """U-Net's expanding path in plain functional torch, read off the weight names: up-conv
    (2x2, stride 2), crop to the skip, concatenate [up, skip], (conv 3x3, BN, ReLU) x 2, then
    a 1x1 conv and a bilinear resize."""

    def bn(x: torch.Tensor, prefix: str) -> torch.Tensor:
        return F.batch_norm(
            x,
            weights[f"{prefix}.running_mean"].clone(),
            weights[f"{prefix}.running_var"].clone(),
            weights[f"{prefix}.weight"],
            weights[f"{prefix}.bias"],
            training=train,
        )

    x = features[-1]
    for level, skip in enumerate(reversed(features[:-1])):
        up = f"decoder.up.{level}"
        x = F.conv_transpose2d(x, weights[f"{up}.weight"], weights[f"{up}.bias"], stride=2)
        x = x[:, :, : skip.shape[-2], : skip.shape[-1]]
        x = torch.cat([x, skip], dim=1)
        block = f"decoder.blocks.{level}"
        x = F.relu(bn(F.conv2d(x, weights[f"{block}.0.weight"], padding=1), f"{block}.1"))
        x = F.relu(bn(F.conv2d(x, weights[f"{block}.3.weight"], padding=1), f"{block}.4"))
    x = F.conv2d(x, weights["decoder.classifier.weight"], weights["decoder.classifier.bias"])
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _unet_params(skips: list[int], deepest: int, classes: int) -> int:
    """Parameters of the expanding path with each level as wide as its skip."""
    total, current = 0, deepest
    for skip in reversed(skips):
        total += current * skip * 4 + skip  # the up-conv (bias)
        total += (2 * skip) * skip * 9 + skip * skip * 9 + 4 * skip  # two 3x3 convs, two norms
        current = skip
    return total + current * classes + classes


def test_unet_decoder_equals_a_written_out_unet() -> None:
    spec = _spec("resnet18", UNET, "input.size=64")
    ours = _double(rg.build(spec))
    body = torchvision.models.resnet18().double()
    tv_keys = set(body.state_dict())
    body.load_state_dict({k: v for k, v in ours.state_dict().items() if k in tv_keys}, strict=False)
    getter = IntermediateLayerGetter(body, OrderedDict([("relu", "0")] + [(f"layer{i}", str(i)) for i in range(1, 5)]))
    body_params = count_params(torchvision.models.resnet18()) - 512 * 1000 - 1000
    assert count_params(ours) == body_params + _unet_params([64, 64, 128, 256], 512, 3)
    assert rg.load_spec("resnet18_unet_seg").head is not None
    assert rg.analyze(rg.load_spec("resnet18_unet_seg")).params == body_params + _unet_params(
        [64, 64, 128, 256], 512, 2
    )
    weights = {k: v.detach().clone() for k, v in ours.state_dict().items()}
    for size in ODD_SIZES:
        x = torch.randn(2, 3, *size, dtype=torch.float64)
        ours.eval()
        getter.eval()
        features = list(getter(x).values())
        expected = _reference_unet_mask(features, weights, size, train=False)
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-10)


# --- live and emitted; sizes; training; tracing -------------------------------------------------

SMALL: dict[str, tuple[str, ...]] = {
    "transposed": (
        "resnet18",
        "head={type: segmentation, num_classes: 3, decoder: {type: transposed, channels: [32, 16]}}",
    ),
    "fpn": ("resnet18", FPN),
    "unet": ("resnet18", UNET),
    "multitask": (
        "resnet18",
        "head={type: multitask, num_classes: 4, mask_classes: 2, decoder: {type: fpn, width: 16}}",
    ),
    "preact unet": (
        "resnetv2_50",
        "head={type: segmentation, num_classes: 2, decoder: unet}",
        "stages=[{blocks: 1, width: 8}, {blocks: 2, width: 16, stride: 2}, {blocks: 1, width: 16, stride: 2}]",
    ),
    "dilated fpn": ("resnet18", FPN, "backbone.output_stride=8"),
    "frozen unet, drop path": ("resnet18", UNET, "backbone.frozen_stages=2", "drop_path=0.1"),
    "deep stem, avg-down unet": ("resnet18d", UNET),
    "blur pools, SE fpn": ("resnetblur18", FPN, "block.attention=se"),
    "fpn on layer1, layer2 alone": (
        "resnet18",
        "head={type: segmentation, num_classes: 2, decoder: {type: fpn, width: 16, features: [1, 2]}}",
    ),
    "cifar fpn": ("cifar_resnet20", "head={type: segmentation, num_classes: 10, decoder: {type: fpn, width: 16}}"),
}


@pytest.mark.parametrize("case", list(SMALL))
def test_emitted_equals_live(case: str) -> None:
    name, *options = SMALL[case]
    spec = _spec(name, *options, "input.size=40")
    live = rg.build(spec).double()
    randomize(live)
    ours = emitted_model(spec).double()
    assert_same_structure(live, ours)
    assert count_params(live) == rg.analyze(spec).params
    copy_weights(live, ours)
    for size in ((40, 40), (37, 29)):
        assert_same_outputs(live, ours, torch.randn(2, spec.input.channels, *size, dtype=torch.float64))


@pytest.mark.parametrize("case", list(SMALL))
def test_mask_at_input_resolution(case: str) -> None:
    name, *options = SMALL[case]
    spec = _spec(name, *options)
    model = rg.build(spec).eval()
    if "alone" in case:
        assert not hasattr(model, "layer3") and not hasattr(model, "layer4")  # no stage past the last feature
    classes = spec.head.mask_channels if spec.head is not None else 0
    for size in ODD_SIZES:
        with torch.no_grad():
            out = model(torch.randn(1, spec.input.channels, *size))
        mask = out.mask if spec.head is not None and spec.head.type == "multitask" else out
        assert mask.shape == (1, classes, *size)
        if spec.head is not None and spec.head.type == "multitask":
            assert out.logits.shape == (1, spec.head.num_classes)


def _dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft dice over the classes (V-Net's), from the softmax and the one-hot target."""
    probs = logits.softmax(1)
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    overlap = (probs * one_hot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + one_hot.sum((0, 2, 3))
    return 1 - (2 * overlap / total.clamp_min(1e-6)).mean()


TRAINED = {
    "fpn": "head={type: segmentation, num_classes: 3, decoder: {type: fpn, width: 16}}",
    "unet": "head={type: segmentation, num_classes: 3, decoder: unet}",
    "multitask": "head={type: multitask, num_classes: 4, mask_classes: 3, decoder: {type: transposed, channels: [32, 16]}}",
}


@pytest.mark.parametrize("case", list(TRAINED))
def test_training_steps_lower_the_segmentation_loss(case: str) -> None:
    torch.manual_seed(0)
    spec = _spec("cifar_resnet20", TRAINED[case])
    model = rg.build(spec).train()
    multitask = case == "multitask"
    images = torch.randn(2, 3, 32, 32)
    # Random masks in 4x4 blocks: regions a decoder can draw, not per-pixel noise.
    masks = torch.randint(0, 3, (2, 8, 8)).repeat_interleave(4, 1).repeat_interleave(4, 2)
    labels = torch.randint(0, 4, (2,))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        out = model(images)
        mask = out.mask if multitask else out
        loss = F.cross_entropy(mask, masks) + _dice_loss(mask, masks)
        if multitask:
            loss = loss + F.cross_entropy(out.logits, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(p.grad is not None for p in model.parameters()), "every parameter takes part in the loss"
    assert losses[-1] < 0.75 * losses[0], losses


@pytest.mark.parametrize("case", ["transposed", "unet", "multitask"])
def test_fx_trace_and_torch_export(case: str) -> None:
    name, *options = SMALL[case]
    spec = _spec(name, *options, "input.size=32")
    model = rg.build(spec).eval()
    x = torch.randn(1, 3, 37, 29)
    traced = torch.fx.symbolic_trace(model)
    exported = torch.export.export(model, (x,)).module()
    with torch.no_grad():
        expected = model(x)
        for other in (traced(x), exported(x)):
            for a, b in zip(
                other if isinstance(other, tuple) else [other],
                expected if isinstance(expected, tuple) else [expected],
                strict=True,
            ):
                torch.testing.assert_close(a, b)
    assert any(node.target == F.interpolate for node in traced.graph.nodes)
    emitted = emitted_model(spec).eval()
    copy_weights(model, emitted)
    with torch.no_grad():
        got = torch.fx.symbolic_trace(emitted)(x)
    for a, b in zip(
        got if isinstance(got, tuple) else [got], expected if isinstance(expected, tuple) else [expected], strict=True
    ):
        torch.testing.assert_close(a, b)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("case", ["transposed", "fpn", "unet", "multitask", "preact unet"])
def test_emitted_decoder_nets_script_with_torch_jit(case: str) -> None:
    """The emitted file, decoder included, scripts as the classifiers' do; the scripted net gives
    the eager one's mask (and class scores) at an input whose maps do not halve evenly."""
    name, *options = SMALL[case]
    spec = _spec(name, *options, "input.size=32")
    model = emitted_model(spec).eval()
    randomize(model)
    scripted = torch.jit.script(model)
    x = torch.randn(2, spec.input.channels, 37, 29)
    with torch.no_grad():
        expected, got = model(x), scripted(x)
    for a, b in zip(
        got if isinstance(got, tuple) else [got], expected if isinstance(expected, tuple) else [expected], strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert isinstance(expected, tuple) == (case == "multitask")


# --- diagram, report, dumps ------------------------------------------------------------------


def test_diagram_shows_the_decoder_and_its_skips() -> None:
    spec = rg.load_spec("resnet18_unet_seg")
    graph = parse(rg.diagram(spec))
    decoder = graph.nodes["decoder"]
    assert "unet decoder" in decoder.text and "1×1 conv, 2" in decoder.text
    skips = [edge for edge in graph.edges if edge.head == "decoder" and "skip" in edge.classes]
    # Features 0..3 come in as skips (the stem's before its pool, /2), layer4 on the main line.
    assert sorted(edge.text for edge in skips) == sorted(
        ["64×112×112 · /2", "64×56×56 · /4", "128×28×28 · /8", "256×14×14 · /16"]
    )
    assert graph.path("input", "mask")[-2:] == ["decoder", "mask"]
    assert "2×224×224" in graph.nodes["mask"].text
    multitask = parse(rg.diagram(rg.load_spec("medical_resnet18_multitask")))
    assert {"decoder", "mask", "head", "output"} <= set(multitask.nodes)


def test_report_has_a_decoder_row_and_classifier_dumps_are_unchanged() -> None:
    report = rg.analyze(rg.load_spec("resnet50_fpn_seg"))
    decoder = report.rows[-1]
    assert decoder.name == "decoder" and decoder.output_size == (224, 224) and decoder.channels == 21
    fpn = FeaturePyramidNetwork([256, 512, 1024, 2048], 256)
    assert decoder.params == count_params(fpn) + 256 * 21 + 21
    assert rg.load_spec("resnet18").model_dump(mode="json")["head"] == {
        "pool": "avg",
        "dropout": 0.0,
        "num_classes": 1000,
    }
    assert "decoder" not in rg.load_spec("resnet18", ["head.type=classifier"]).model_dump()["head"]


def test_emitted_multitask_returns_a_named_tuple() -> None:
    spec = _spec("resnet18", MEDICAL, "input.channels=1", "input.size=32")
    model = emitted_model(spec).eval()
    with torch.no_grad():
        logits, mask = model(torch.randn(1, 1, 32, 32))
        out = model(torch.randn(1, 1, 32, 32))
    assert type(out).__name__ == "MultiTaskOutput" and out.mask.shape == mask.shape == (1, 1, 32, 32)
    assert logits.shape == (1, 2)


# --- pretrained backbones, export ----------------------------------------------------------------


def test_imagenet_backbone_weights_load_under_the_decoder() -> None:
    """torchvision's resnet18 weights fill the backbone; the decoder keeps its initialisation."""
    model = rg.build(rg.load_spec("resnet18_unet_seg"))
    state = torchvision.models.resnet18().state_dict()
    report = rg.load_weights(model, state)
    assert sorted(key for key, _ in report.skipped) == ["fc.bias", "fc.weight"]
    assert report.missing and all(key.startswith("decoder.") for key in report.missing)
    ours = model.state_dict()
    for key, tensor in state.items():
        if not key.startswith("fc."):
            assert torch.equal(ours[key], tensor), key


def test_onnx_export_names_logits_and_mask(tmp_path: Path) -> None:
    spec = rg.load_spec("medical_resnet18_multitask", ["input.size=64"])
    model = rg.build(spec).eval()
    path = export_onnx(model, tmp_path / "medical.onnx")
    session = ort.InferenceSession(str(path))
    assert [output.name for output in session.get_outputs()] == ["logits", "mask"]
    x = torch.randn(3, 1, 64, 64)
    logits, mask = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(torch.from_numpy(logits), expected.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(torch.from_numpy(mask), expected.mask, rtol=1e-4, atol=1e-4)


def test_training_on_class_labels_refuses_a_segmentation_head() -> None:
    """``resnet-gen train`` fits classifiers to labelled images: a decoder head is refused in one line."""
    info = DatasetInfo("digits", "train", 10, 1, (8, 8), tuple("0123456789"), (0.5,), (0.5,), 100)
    spec = rg.load_spec("medical_resnet18_multitask", ["input.size=8"])
    with pytest.raises(
        DataError, match=r"^digits: class labels into a multitask head .*; add --set head.type=classifier$"
    ):
        check_fit(spec, info, resizes=False)
    check_fit(
        rg.load_spec(
            "medical_resnet18_multitask",
            [
                "input.size=8",
                "head.type=classifier",
                "head.decoder=null",
                "head.mask_classes=null",
                "head.num_classes=10",
            ],
        ),
        info,
        resizes=False,
    )


def test_timm_create_model_sets_the_mask_classes_and_input_channels() -> None:
    import timm

    from resnet_gen.timm import register

    name = register("resnet18_unet_seg", name="heads_test_unet")
    model = timm.create_model(name, num_classes=5, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 45, 64)).shape == (1, 5, 45, 64)
    with pytest.raises(rg.SpecError, match="a segmentation head needs the whole network"):
        timm.create_model(name, features_only=True)


def test_analyses_refuse_a_multitask_head() -> None:
    """The analyses measure a classification loss on the logits alone: a decoder head is refused in one line."""
    from resnet_gen.analyses.common import classifier_plan

    with pytest.raises(rg.SpecError, match=r"^medical_resnet18_multitask: the analyses need a classifier head"):
        classifier_plan(rg.load_spec("medical_resnet18_multitask"))
    assert classifier_plan(rg.load_spec("resnet18")).head is not None
