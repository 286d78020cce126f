"""``rg.detection_backbone`` inside torchvision's detection models: one training step and one
eval forward of FasterRCNN on random images and boxes, for a post- and a pre-activation net, of
MaskRCNN (with masks) and of RetinaNet (torchvision's P3-P7 pyramid), with
torchvision's ``trainable_layers`` meaning the same as in its own ``resnet_fpn_backbone``."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

import resnet_gen as rg

SIZE = 128


def _targets(generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
    targets = []
    for _ in range(2):
        corner = torch.rand(3, 2, generator=generator) * (SIZE / 2)
        boxes = torch.cat([corner, corner + 16 + torch.rand(3, 2, generator=generator) * (SIZE / 3)], dim=1)
        targets.append({"boxes": boxes, "labels": torch.randint(1, 3, (3,), generator=generator)})
    return targets


@pytest.mark.parametrize("name", ["resnet50", "resnetv2_50"])
def test_faster_rcnn_trains_and_detects(name: str) -> None:
    backbone = rg.detection_backbone(rg.load_spec(name), trainable_layers=3)
    assert backbone.out_channels == 256
    model = FasterRCNN(backbone, num_classes=3, min_size=SIZE, max_size=SIZE)
    losses = {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    before, after = _train_and_detect(model, _targets(torch.Generator().manual_seed(0)), losses)
    # Frozen: the stem and layer1, weights and norm statistics alike; the rest trained.
    for key, value in before.items():
        top = key.split(".")[2] if key.startswith("backbone.body.") else None
        if top in ("conv1", "bn1", "layer1"):
            assert torch.equal(value, after[key]), key
    assert not torch.equal(before["backbone.body.layer4.0.conv1.weight"], after["backbone.body.layer4.0.conv1.weight"])


@pytest.mark.parametrize("trainable_layers", [0, 3, 5])
def test_trainable_layers_as_torchvision(trainable_layers: int) -> None:
    """The same convs train as in torchvision's resnet_fpn_backbone (its norms are all frozen;
    ours freeze with the stages they belong to)."""
    ours = rg.detection_backbone(rg.load_spec("resnet50"), trainable_layers=trainable_layers)
    theirs = resnet_fpn_backbone(backbone_name="resnet50", weights=None, trainable_layers=trainable_layers)

    def trained_convs(model: torch.nn.Module) -> set[str]:
        return {n for n, p in model.named_parameters() if p.requires_grad and p.dim() == 4 and n.startswith("body.")}

    assert trained_convs(ours) == trained_convs(theirs)
    x = torch.randn(1, 3, 64, 64)
    ours_out, theirs_out = ours(x), theirs(x)
    assert list(ours_out) == list(theirs_out)
    assert [t.shape for t in ours_out.values()] == [t.shape for t in theirs_out.values()]


def test_without_fpn_and_bad_arguments() -> None:
    backbone = rg.detection_backbone(rg.load_spec("resnet18"), fpn=False)
    assert backbone.out_channels == 512 and backbone(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)
    with pytest.raises(ValueError, match=r"trainable_layers must be between 0 and 5 for 4 stages, not 6"):
        rg.detection_backbone(rg.load_spec("resnet18"), trainable_layers=6)
    with pytest.raises(ValueError, match=r"returned_layers must be stage numbers 1..4"):
        rg.detection_backbone(rg.load_spec("resnet18"), returned_layers=[0, 2])


def _train_and_detect(
    model: torch.nn.Module, targets: list[dict[str, torch.Tensor]], losses: set[str]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One SGD step that changes the trainable weights, then an eval forward that detects; the
    state_dict before the step and after it."""
    generator = torch.Generator().manual_seed(1)
    images = [torch.rand(3, SIZE, SIZE, generator=generator) for _ in range(2)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    state_before = {key: value.clone() for key, value in model.state_dict().items()}
    model.train()
    found = model(images, targets)
    assert losses == set(found)
    total = sum(found.values())
    assert torch.isfinite(total)
    total.backward()
    torch.optim.SGD(trainable, lr=0.01).step()
    assert any(not torch.equal(old, new) for old, new in zip(before, trainable, strict=True))
    state_after = {key: value.clone() for key, value in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2 and all({"boxes", "labels", "scores"} <= set(d) for d in detections)
    return state_before, state_after


def test_mask_rcnn_trains_and_segments() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = _targets(generator)
    for target in targets:  # a filled mask inside each box
        masks = torch.zeros(len(target["boxes"]), SIZE, SIZE, dtype=torch.uint8)
        for mask, (x0, y0, x1, y1) in zip(masks, target["boxes"].int().tolist(), strict=True):
            mask[y0:y1, x0:x1] = 1
        target["masks"] = masks
    backbone = rg.detection_backbone(rg.load_spec("resnet18"), trainable_layers=5)
    model = MaskRCNN(backbone, num_classes=3, min_size=SIZE, max_size=SIZE)
    losses = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    _train_and_detect(model, targets, losses)
    with torch.no_grad():
        masks = model([torch.rand(3, SIZE, SIZE)])[0]["masks"]
    assert masks.shape[1:] == (1, SIZE, SIZE)


def test_retinanet_takes_torchvisions_p3_to_p7_pyramid() -> None:
    """As torchvision's retinanet_resnet50_fpn: stages 2-4 under the FPN, P6 and P7 from P5."""
    backbone = rg.detection_backbone(
        rg.load_spec("resnetv2_50"), returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)
    )
    theirs = resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)
    )
    x = torch.randn(1, 3, SIZE, SIZE)
    assert [t.shape for t in backbone(x).values()] == [t.shape for t in theirs(x).values()]
    model = RetinaNet(backbone, num_classes=3, min_size=SIZE, max_size=SIZE)
    _train_and_detect(model, _targets(torch.Generator().manual_seed(0)), {"classification", "bbox_regression"})
