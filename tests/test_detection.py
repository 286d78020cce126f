"""``rg.detection_backbone`` inside torchvision's detection models: one training step and one
eval forward of FasterRCNN on random images and boxes, for a post- and a pre-activation net, with
torchvision's ``trainable_layers`` meaning the same as in its own ``resnet_fpn_backbone``."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

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
    generator = torch.Generator().manual_seed(0)
    backbone = rg.detection_backbone(rg.load_spec(name), trainable_layers=3)
    assert backbone.out_channels == 256
    model = FasterRCNN(backbone, num_classes=3, min_size=SIZE, max_size=SIZE)
    images = [torch.rand(3, SIZE, SIZE, generator=generator) for _ in range(2)]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    losses = model(images, _targets(generator))
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()
    after = model.state_dict()
    # Frozen: the stem and layer1, weights and norm statistics alike; the rest trained.
    for key, value in before.items():
        top = key.split(".")[2] if key.startswith("backbone.body.") else None
        if top in ("conv1", "bn1", "layer1"):
            assert torch.equal(value, after[key]), key
    assert not torch.equal(before["backbone.body.layer4.0.conv1.weight"], after["backbone.body.layer4.0.conv1.weight"])
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2 and all({"boxes", "labels", "scores"} <= set(d) for d in detections)


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
