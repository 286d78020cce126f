"""Plain transcriptions of the code the papers' CIFAR numbers were published with.

They share nothing with resnet_gen: each is written from its reference implementation, so a
spec that builds the same function proves the spec's semantics, not just its parameter count.
Parameters are registered in execution order (stem, blocks, final norm, classifier), so weights
can be copied between these and the generated modules position by position.

- He et al. 2015, CIFAR: conv-BN-ReLU stem, post-activation basic blocks. Shortcut A as
  fb.resnet.torch's type A (stride-2 subsampling, then the channels concatenated with zeros),
  B as a 1x1 conv + BN where the shape changes, none for the plain nets.
- He et al. 2016 pre-activation bottlenecks, as KaimingHe/resnet-1k-layers resnet-pre-act.lua: a
  bare conv stem; where the shape changes one BN-ReLU feeds both the branch and a bare 1x1
  projection; the stride sits on the first 1x1; a final BN-ReLU before pooling.
- Zagoruyko & Komodakis 2016 wide basic blocks (szagoruyko/wide-residual-networks): the same
  pre-activation pattern with two 3x3 convs and dropout between them.
- Post-activation bottlenecks, stride on the 3x3, projection + BN where the shape changes: the
  CIFAR ResNet-50..152 of kuangliu/pytorch-cifar and ResNeXt-29 (facebookresearch/ResNeXt).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)


class PostBasic(nn.Module):
    """He et al. 2015 basic block: conv-BN-ReLU-conv-BN, add the shortcut, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = _conv(cin, cout, 3, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv(cout, cout, 3)
        self.bn2 = nn.BatchNorm2d(cout)
        self.kind = shortcut
        self.stride = stride
        self.changes = stride != 1 or cin != cout
        if shortcut == "B" and self.changes:
            self.proj = nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.kind == "B" and self.changes:
            out = out + self.proj(x)
        elif self.kind == "A" and self.changes:
            # fb.resnet.torch: SpatialAveragePooling(1, 1, stride, stride), Concat(Identity, MulConstant(0)).
            sub = F.avg_pool2d(x, 1, self.stride)
            out = out + torch.cat([sub, sub * 0], dim=1)
        elif self.kind != "none":
            out = out + x
        return F.relu(out)


class PostBottleneck(nn.Module):
    """1x1-BN-ReLU, 3x3 (stride, groups)-BN-ReLU, 1x1-BN, add, ReLU; projection + BN where the shape changes."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, groups: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(cin, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = _conv(mid, mid, 3, stride, groups)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = _conv(mid, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.proj = (
            nn.Sequential(_conv(cin, cout, 1, stride), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.proj(x) if self.proj is not None else x))


class PreActUnit(nn.Module):
    """He et al. 2016 unit (bottleneck) or a WRN wide basic block (two 3x3 convs, dropout between)."""

    def __init__(self, cin: int, cout: int, stride: int, *, bottleneck: bool, dropout: float = 0.0) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(cin)
        self.bottleneck = bottleneck
        self.dropout = dropout
        if bottleneck:
            mid = cout // 4
            self.conv_a = _conv(cin, mid, 1, stride)
            self.bn_b = nn.BatchNorm2d(mid)
            self.conv_b = _conv(mid, mid, 3)
            self.bn_c = nn.BatchNorm2d(mid)
            self.conv_c = _conv(mid, cout, 1)
        else:
            self.conv_a = _conv(cin, cout, 3, stride)
            self.bn_b = nn.BatchNorm2d(cout)
            self.conv_b = _conv(cout, cout, 3)
        # Both references project exactly where the channel count changes.
        self.proj = _conv(cin, cout, 1, stride) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn_in(x))
        out = F.relu(self.bn_b(self.conv_a(pre)))
        if self.bottleneck:
            out = self.conv_c(F.relu(self.bn_c(self.conv_b(out))))
        else:
            out = F.dropout(out, self.dropout, self.training)
            out = self.conv_b(out)
        return out + (self.proj(pre) if self.proj is not None else x)


class CifarNet(nn.Module):
    """Stem conv (+ BN-ReLU for post-activation nets), the units, final BN-ReLU (pre-activation), pool, fc."""

    def __init__(self, stem_width: int, units: list[nn.Module], features: int, *, preact: bool, classes: int = 10):
        super().__init__()
        self.conv1 = _conv(3, stem_width, 3)
        self.bn1 = None if preact else nn.BatchNorm2d(stem_width)
        self.units = nn.Sequential(*units)
        self.bn_final = nn.BatchNorm2d(features) if preact else None
        self.fc = nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.bn1 is not None:
            x = F.relu(self.bn1(x))
        x = self.units(x)
        if self.bn_final is not None:
            x = F.relu(self.bn_final(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def he2015_cifar(n: int, shortcut: str) -> CifarNet:
    """ResNet-(6n+2) with shortcut 'A', 'B' or 'none' (plain)."""
    units: list[nn.Module] = []
    cin = 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        for index in range(n):
            units.append(PostBasic(cin, width, stride if index == 0 else 1, shortcut))
            cin = width
    return CifarNet(16, units, 64, preact=False)


def preact_bottleneck_cifar(n: int) -> CifarNet:
    """Pre-activation ResNet-(9n+2): stages of 64/128/256 output channels."""
    units: list[nn.Module] = []
    cin = 16
    for width, stride in ((64, 1), (128, 2), (256, 2)):
        for index in range(n):
            units.append(PreActUnit(cin, width, stride if index == 0 else 1, bottleneck=True))
            cin = width
    return CifarNet(16, units, 256, preact=True)


def wide_resnet(depth: int, k: int, dropout: float = 0.0) -> CifarNet:
    """WRN-depth-k: (depth - 4) / 6 wide basic blocks per stage of 16k, 32k, 64k channels."""
    n = (depth - 4) // 6
    units: list[nn.Module] = []
    cin = 16
    for width, stride in ((16 * k, 1), (32 * k, 2), (64 * k, 2)):
        for index in range(n):
            units.append(PreActUnit(cin, width, stride if index == 0 else 1, bottleneck=False, dropout=dropout))
            cin = width
    return CifarNet(16, units, 64 * k, preact=True)


def resnext29(cardinality: int, base_width: int, blocks: int = 3) -> CifarNet:
    """ResNeXt-29 (C x base_width d): stages of 256/512/1024 channels, inner width C * d doubling per stage."""
    units: list[nn.Module] = []
    cin = 64
    for stage, (cout, stride) in enumerate(((256, 1), (512, 2), (1024, 2))):
        mid = cardinality * base_width * 2**stage
        for index in range(blocks):
            units.append(PostBottleneck(cin, mid, cout, stride if index == 0 else 1, cardinality))
            cin = cout
    return CifarNet(64, units, 1024, preact=False)


def kuangliu_resnet(blocks: tuple[int, int, int, int], bottleneck: bool) -> CifarNet:
    """kuangliu/pytorch-cifar ResNet: 3x3 stem of 64, four stages of 64..512 (x4 for bottlenecks)."""
    units: list[nn.Module] = []
    cin = 64
    expansion = 4 if bottleneck else 1
    for planes, count, stride in zip((64, 128, 256, 512), blocks, (1, 2, 2, 2), strict=True):
        for index in range(count):
            step = stride if index == 0 else 1
            cout = planes * expansion
            unit = PostBottleneck(cin, planes, cout, step) if bottleneck else PostBasic(cin, cout, step, "B")
            units.append(unit)
            cin = cout
    return CifarNet(64, units, cin, preact=False)


class He2016Unit(nn.Module):
    """The five residual units of He et al. 2016, Fig. 4, written from the figure: (a) ``post``,
    (b) ``bn_after_add``, (c) ``relu_before_add``, (d) ``relu_preact``, (e) ``pre``.

    Basic (two 3x3 convs) or bottleneck (1x1 striding, 3x3, 1x1 of 4x). Shortcut 'A' subsamples
    and zero-pads the channels, 'B' projects with a 1x1 conv (and a BN in units a to c) where the
    shape changes; in the pre-activation units (d, e) a changing shortcut reads the activated input.
    Tensors are registered in execution order (the norm after the addition last).
    """

    def __init__(self, cin: int, cout: int, stride: int, unit: str, *, bottleneck: bool, shortcut: str) -> None:
        super().__init__()
        self.unit, self.stride, self.kind = unit, stride, shortcut
        self.changes = stride != 1 or cin != cout
        self.bn_in = nn.BatchNorm2d(cin) if unit == "pre" else None
        mid = cout // 4 if bottleneck else cout
        if bottleneck:
            convs = [_conv(cin, mid, 1, stride), _conv(mid, mid, 3), _conv(mid, cout, 1)]
        else:
            convs = [_conv(cin, mid, 3, stride), _conv(mid, cout, 3)]
        # Each conv and the BN after it; unit (b) moves the last BN after the addition and unit (e)
        # has its BNs before the convs (the first one is bn_in, the later ones follow conv k).
        self.body = nn.ModuleList()
        for position, conv in enumerate(convs):
            self.body.append(conv)
            last = position == len(convs) - 1
            if not last or unit not in ("bn_after_add", "pre"):
                self.body.append(nn.BatchNorm2d(conv.out_channels))
        self.proj: nn.Module | None = None
        if shortcut == "B" and self.changes:
            parts: list[nn.Module] = [_conv(cin, cout, 1, stride)]
            if unit in ("post", "bn_after_add", "relu_before_add"):
                parts.append(nn.BatchNorm2d(cout))
            self.proj = nn.Sequential(*parts)
        self.bn_out = nn.BatchNorm2d(cout) if unit == "bn_after_add" else None

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        """The convs and BNs in order, a ReLU after each BN except a last one in units (a) and (d)."""
        for module in self.body:
            x = module(x)
            ends = module is self.body[-1]
            if isinstance(module, nn.BatchNorm2d) and not (ends and self.unit in ("post", "relu_preact")):
                x = F.relu(x)
        return x

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if not self.changes:
            return x
        if self.proj is not None:
            return self.proj(x)
        sub = x[:, :, :: self.stride, :: self.stride]
        return torch.cat([sub, torch.zeros_like(sub)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unit == "pre":
            assert self.bn_in is not None
            activated = F.relu(self.bn_in(x))
        elif self.unit == "relu_preact":
            activated = F.relu(x)
        else:
            activated = x
        out = self._branch(activated)
        out = out + self._shortcut(activated if self.changes else x)
        if self.bn_out is not None:
            out = self.bn_out(out)
        return F.relu(out) if self.unit in ("post", "bn_after_add") else out


class He2016Net(nn.Module):
    """CIFAR stem (conv, then BN-ReLU except with unit e), the units, the pre-activation units'
    final activation (BN-ReLU for e, ReLU for d), pool, fc."""

    def __init__(self, unit: str, n: int, *, bottleneck: bool) -> None:
        super().__init__()
        self.unit = unit
        self.conv1 = _conv(3, 16, 3)
        self.bn1 = None if unit == "pre" else nn.BatchNorm2d(16)
        expansion = 4 if bottleneck else 1
        units: list[nn.Module] = []
        cin = 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for index in range(n):
                cout = width * expansion
                step = stride if index == 0 else 1
                units.append(
                    He2016Unit(cin, cout, step, unit, bottleneck=bottleneck, shortcut="B" if bottleneck else "A")
                )
                cin = cout
        self.units = nn.Sequential(*units)
        self.bn_final = nn.BatchNorm2d(cin) if unit == "pre" else None
        self.fc = nn.Linear(cin, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.bn1 is not None:
            x = F.relu(self.bn1(x))
        x = self.units(x)
        if self.bn_final is not None:
            x = F.relu(self.bn_final(x))
        elif self.unit == "relu_preact":
            x = F.relu(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
