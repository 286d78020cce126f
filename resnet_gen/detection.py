"""Detection backbones: a spec-made network as torchvision's ``FasterRCNN`` / ``MaskRCNN`` /
``RetinaNet`` take one, with a feature pyramid over its stages, as torchvision's
``resnet_fpn_backbone`` makes from its own ResNets (needs torchvision)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork, LastLevelMaxPool

from .compile import plan_of
from .live.build import build
from .spec import Spec
from .spec.backbone import with_backbone


class DetectionBackbone(nn.Module):
    """``body`` (a features-only network) and an optional FPN over its maps; ``out_channels`` is
    what the detection heads read. Returns an ``OrderedDict`` of maps (``"0"``, ``"1"``, ...,
    and ``"pool"`` from the FPN's extra block), or the last map alone without an FPN."""

    def __init__(self, body: nn.Module, fpn: FeaturePyramidNetwork | None, out_channels: int) -> None:
        super().__init__()
        self.body = body
        self.fpn = fpn
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor] | torch.Tensor:
        maps = self.body(x)
        if self.fpn is None:
            out: torch.Tensor = maps[-1]
            return out
        features: OrderedDict[str, torch.Tensor] = self.fpn(
            OrderedDict((str(index), tensor) for index, tensor in enumerate(maps))
        )
        return features


def trainable_to_frozen(stages: int, trainable_layers: int) -> int | None:
    """torchvision's ``trainable_layers`` (how many of layerN .. layer1, then the stem, train) as
    the spec's ``frozen_stages`` (features 0..K frozen); all trainable is no freezing at all."""
    if not 0 <= trainable_layers <= stages + 1:
        raise ValueError(
            f"trainable_layers must be between 0 and {stages + 1} for {stages} stages, not {trainable_layers}"
        )
    frozen = stages - trainable_layers
    return None if frozen < 0 else frozen


def detection_backbone(
    spec: Spec,
    fpn: bool = True,
    trainable_layers: int = 3,
    returned_layers: Sequence[int] | None = None,
    out_channels: int = 256,
    extra_blocks: ExtraFPNBlock | None = None,
) -> DetectionBackbone:
    """A backbone for torchvision's detection models, as its ``resnet_fpn_backbone``: stages
    ``returned_layers`` (1..N; all by default) under an FPN of ``out_channels`` with a max-pool
    level on top (``extra_blocks``), the last ``trainable_layers`` of layerN..layer1 and the stem
    trainable and the rest frozen (frozen norms, no gradients). ``fpn=False`` returns the last
    stage's map alone, its channels as ``out_channels``."""
    stages = len(spec.stages)
    layers = list(returned_layers) if returned_layers is not None else list(range(1, stages + 1))
    if not layers or any(not 1 <= index <= stages for index in layers):
        raise ValueError(f"returned_layers must be stage numbers 1..{stages}, not {layers}")
    options: dict[str, object] = {"features_only": True, "out_indices": layers if fpn else [stages]}
    frozen = trainable_to_frozen(stages, trainable_layers)
    if frozen is not None:
        options["frozen_stages"] = frozen
    body = build(plan_of(with_backbone(spec, **options)))
    channels = body.feature_info.channels()
    if not fpn:
        return DetectionBackbone(body, None, int(channels[-1]))
    pyramid = FeaturePyramidNetwork(channels, out_channels, extra_blocks or LastLevelMaxPool())
    return DetectionBackbone(body, pyramid, out_channels)
