"""The report's per-stage layer text (what ``resnet-gen info`` prints) says what the network has.

Over the whole catalog: the ``[kxk width, ...]`` list of each stage's row names, in order, the
convs of the built module's first block of that stage (its own conv children, read from torch,
not from the plan), with their groups. timm's SENet-154 and pruned ECA-ResNet-50-D, whose first
conv is narrower than the width rule's, are checked against timm's modules as well.
"""

from __future__ import annotations

import re

import pytest
import timm
import torch
from torch import nn

import resnet_gen as rg
from tests.conftest import CLASSIFIER_SPECS

CONV_TEXT = re.compile(r"(\d+)x(\d+) (\d+)(?:, split attention radix \d+)?(?:, (\d+) groups)?")


def _convs_in_text(detail: str) -> list[tuple[int, int, int]]:
    inside = detail[detail.index("[") + 1 : detail.index("]")]
    return [(int(k), int(width), int(groups or 1)) for k, _, width, groups in CONV_TEXT.findall(inside)]


def _branch_convs(block: nn.Module) -> list[tuple[int, int, int]]:
    """The block's own convs (its direct Conv2d children: shortcut and attention convs sit deeper),
    a split-attention conv counted by its inner conv, whose ``radix`` splits each have the width."""
    out = []
    for child in block.children():
        if isinstance(child, nn.Conv2d):
            out.append((int(child.kernel_size[0]), child.out_channels, child.groups))
        elif hasattr(child, "radix") and isinstance(getattr(child, "conv", None), nn.Conv2d):
            conv, radix = child.conv, int(child.radix)
            out.append((int(conv.kernel_size[0]), conv.out_channels // radix, conv.groups // radix))
    return out


# The rows of a classifier's stages name their block's convs; a U-Net's rows (ResBlocks,
# attention, skips) are checked in test_unet_cli.py.
@pytest.mark.parametrize("name", CLASSIFIER_SPECS)
def test_stage_rows_name_the_first_blocks_convs(name: str) -> None:
    spec = rg.load_spec(name)
    report = rg.analyze(spec)
    with torch.device("meta"):
        model = rg.build(spec)
    stages = [row for row in report.rows if row.name.startswith("layer")]
    assert len(stages) == len(spec.stages)
    for row in stages:
        first_block = model.get_submodule(f"{row.name}.0")
        assert _convs_in_text(row.detail) == _branch_convs(first_block), f"{name} {row.name}: {row.detail}"


@pytest.mark.parametrize("name", ["senet154", "ecaresnet50d_pruned"])
def test_first_conv_width_is_timms(name: str) -> None:
    with torch.device("meta"):
        theirs = timm.create_model(name)
    report = rg.analyze(rg.load_spec(name))
    for row in report.rows:
        if row.name.startswith("layer"):
            block = theirs.get_submodule(f"{row.name}.0")
            widths = [width for _, width, _ in _convs_in_text(row.detail)]
            assert widths == [block.conv1.out_channels, block.conv2.out_channels, block.conv3.out_channels]
