"""A pruned net whose 2,000 blocks all differ draws as a bounded macro view: runs of blocks that
differ only in their widths are merged into ranges labelled with the spread of their widths
(checked against a plain loop over the plan), so the drawing stays a few hundred nodes."""

from __future__ import annotations

import random
import re

import resnet_gen as rg
from resnet_gen.diagram.macro import MAX_RUNS_PER_STAGE, runs
from resnet_gen.plan import layers as L


def _pruned_2000() -> rg.Spec:
    generator = random.Random(0)
    stages = []
    for index, width in enumerate((64, 128, 256, 512)):
        inner = [[8 * generator.randint(1, width // 8), 8 * generator.randint(1, width // 8)] for _ in range(500)]
        stages.append({"blocks": 500, "width": width, "stride": 1 if index == 0 else 2, "inner_channels": inner})
    return rg.load_spec("resnet50", overrides={"name": "pruned2000", "stages": stages})


def test_a_2000_block_net_of_distinct_blocks_draws_bounded() -> None:
    plan = rg.lower(_pruned_2000())
    dot = rg.diagram(plan).source
    assert len(dot) < 200_000  # 1.4 MB unbounded
    for stage in plan.stages:
        groups = runs(stage)
        assert len(groups) <= MAX_RUNS_PER_STAGE + 1  # the first block (its projection) stands alone
        assert [block for group in groups for block in group] == list(stage.blocks)
        for group in groups[1:]:
            convs = [[layer for layer in block.branch if isinstance(layer, L.Conv)] for block in group]
            spreads = []
            for position in range(2):  # conv1 and conv2 carry the pruned widths
                widths = [block_convs[position].out_channels for block_convs in convs]
                spreads.append(f"{min(widths)}\u2013{max(widths)}")
            first = group[0].path.replace(".", r"\.")
            label = re.search(rf'"?{first}"? \[label=<(.*?)> ', dot)
            assert label is not None, group[0].path
            for spread in spreads:
                assert spread in label.group(1)
            assert f"\u00d7{len(group)}" in label.group(1)


def test_stages_within_the_bound_are_drawn_block_by_block() -> None:
    plan = rg.lower(rg.load_spec("ecaresnet101d_pruned"))
    assert max(len(runs(stage)) for stage in plan.stages) == 23 <= MAX_RUNS_PER_STAGE
    assert all(len(group) == 1 for stage in plan.stages for group in runs(stage) if len(runs(stage)) == 23)
