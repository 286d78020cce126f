"""Diagrams: the structure Graphviz reads from our DOT, for shipped specs and hand-written fixtures.

References are the papers' and torchvision's architectures (block counts of Table 1 of He et al.
2015, the activation shapes of a 224x224 input, the published parameter counts), not our output.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from diagram_parse import Parsed, parse

import resnet_gen as rg
from resnet_gen.diagram import VIEWS
from resnet_gen.diagram import diagram as make_diagram
from resnet_gen.diagram.text import describe
from resnet_gen.plan import lower

# name -> (blocks per stage, stage output shapes, stem output shape): torchvision / He et al. 2015.
IMAGENET = {
    "resnet18": ([2, 2, 2, 2], ["64×56×56", "128×28×28", "256×14×14", "512×7×7"]),
    "resnet50": ([3, 4, 6, 3], ["256×56×56", "512×28×28", "1024×14×14", "2048×7×7"]),
    "resnext50_32x4d": ([3, 4, 6, 3], ["256×56×56", "512×28×28", "1024×14×14", "2048×7×7"]),
}
PUBLISHED_PARAMS = {"resnet18": "11.69 M", "resnet50": "25.56 M", "resnext50_32x4d": "25.03 M"}


def write_spec(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


CIFAR = """\
    description: CIFAR ResNet with option A shortcuts.
    input: {{channels: 3, size: 32}}
    stem: {{type: conv, width: 16, kernel: 3, stride: 1, pool: none}}
    block: {{type: basic}}
    shortcut: {shortcut}
    stages:
      - {{blocks: {n}, width: 16}}
      - {{blocks: {n}, width: 32, stride: 2}}
      - {{blocks: {n}, width: 64, stride: 2}}
    head: {{num_classes: 10}}
"""


def cifar(folder: Path, n: int, shortcut: str = "zero_pad") -> rg.Spec:
    return rg.load_spec(write_spec(folder, f"cifar_{shortcut}_{6 * n + 2}", CIFAR.format(n=n, shortcut=shortcut)))


@pytest.fixture
def preact(tmp_path: Path) -> rg.Spec:
    text = CIFAR.format(n=3, shortcut="projection").replace("{type: basic}", "{type: basic, order: pre}")
    return rg.load_spec(write_spec(tmp_path, "preact20", text))


@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_macro_view_of_imagenet_nets(name: str) -> None:
    blocks, shapes = IMAGENET[name]
    graph = parse(rg.diagram(rg.load_spec(name)))

    assert list(graph.clusters) == [f"cluster_layer{i}" for i in range(1, 5)]
    assert name in graph.title and PUBLISHED_PARAMS[name] in graph.title
    for index, count in enumerate(blocks, start=1):
        members = [graph.nodes[node] for node in graph.clusters[f"cluster_layer{index}"]]
        drawn = [node for node in members if "block" in node.classes]
        if name == "resnet18" and index == 1:
            # 64 -> 64 channels at stride 1: no block changes shape, so all are one ×N node.
            assert [node.text.split()[:2] for node in drawn] == [["layer1.0–1", "×2"]]
        else:
            # The first block (which changes shape) alone, then the rest as one ×N node.
            assert [node.name for node in drawn] == [f"layer{index}.0", f"layer{index}.1"]
            assert not drawn[0].text.split()[1].startswith("×")
            rest = count - 1  # a lone block carries no ×1
            marked = drawn[1].text.split()[:2]
            assert marked == ([f"layer{index}.1–{rest}", f"×{rest}"] if rest > 1 else [f"layer{index}.1", "3×3,"])
        header = next(node for node in members if "stage-header" in node.classes)
        kind = "basic" if name == "resnet18" else "bottleneck"
        assert f"{count} × {kind}" in header.text and f"stride {1 if index == 1 else 2}" in header.text
        assert "params" in header.text and "MACs" in header.text

    spine = graph.path("input", "output")
    tensors = [edge.text for edge in graph.edges_with_class("tensor")]
    assert tensors[:2] == ["3×224×224", "64×56×56"]
    for shape in shapes:
        assert shape in tensors
    assert tensors[-1] == "1000"
    assert spine[0] == "input" and spine[-1] == "output" and "head" in spine


@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_projection_and_identity_shortcuts_look_different(name: str) -> None:
    graph = parse(rg.diagram(rg.load_spec(name)))
    projections = graph.with_class("projection")
    identities = graph.edges_with_class("shortcut", "identity")
    # torchvision projects where the shape changes: every stage's first block, except resnet18's
    # layer1 (64 -> 64 channels at stride 1).
    expected = ["layer2.0", "layer3.0", "layer4.0"] if name == "resnet18" else [f"layer{i}.0" for i in range(1, 5)]
    assert [node.name.split("/")[0] for node in projections] == expected
    assert all("1×1" in node.text for node in projections)
    projection_edges = graph.edges_with_class("shortcut", "projection")
    assert len(projection_edges) == 2 * len(expected)
    # One identity shortcut per run of repeated blocks: four stages, one run each.
    assert len(identities) == 4
    styles = {(edge.attrs["color"], edge.attrs["style"]) for edge in identities}
    projection_styles = {(edge.attrs["color"], edge.attrs["style"]) for edge in projection_edges}
    assert len(styles) == 1 and len(projection_styles) == 1 and styles != projection_styles
    # Every shortcut ends at an addition.
    for edge in identities + projection_edges:
        if "/shortcut" not in edge.head:
            assert edge.head.endswith("/add")


def test_zero_pad_avg_down_and_none_are_told_apart(tmp_path: Path) -> None:
    zero = parse(rg.diagram(cifar(tmp_path, 3, "zero_pad")))
    pads = zero.edges_with_class("shortcut", "zero_pad")
    # Option A: subsample and append zero channels, drawn as a labelled edge without parameters.
    assert [edge.text for edge in pads] == ["zero-pad /2, +16 zero channels", "zero-pad /2, +32 zero channels"]
    assert not zero.with_class("projection") and {edge.attrs["style"] for edge in pads} == {"dashed"}
    assert "zero-pad" in zero.title

    spec = rg.load_spec("resnet50", ["shortcut=avg_down"])
    avg = parse(rg.diagram(spec))
    downs = avg.with_class("avg_down")
    assert [node.name for node in downs] == [f"layer{i}.0/shortcut" for i in range(1, 5)]
    assert "2×2 avg pool /2" in downs[1].text and "1×1, 512" in downs[1].text
    assert "identity" not in downs[0].text  # the stride-1 pool is a no-op and is not drawn
    proj = parse(rg.diagram(rg.load_spec("resnet50")))
    assert downs[0].attrs["color"] != proj.with_class("projection")[0].attrs["color"]

    plain = parse(rg.diagram(cifar(tmp_path, 3, "none")))
    assert not [edge for edge in plain.edges if "shortcut" in edge.classes]
    assert not [name for name in plain.nodes if name.endswith("/add")]
    assert "no shortcuts" in plain.title


def test_node_count_does_not_grow_with_depth(tmp_path: Path) -> None:
    for view in VIEWS:
        shallow = parse(rg.diagram(cifar(tmp_path, 3), view))  # ResNet-20
        deep = parse(rg.diagram(cifar(tmp_path, 200), view))  # ResNet-1202
        assert len(deep.nodes) == len(shallow.nodes)
        assert len(deep.edges) == len(shallow.edges)
    macro = parse(rg.diagram(cifar(tmp_path, 200)))
    counts = [node.text.split()[1] for node in macro.with_class("block")]
    assert [count for count in counts if count.startswith("×")] == ["×200", "×199", "×199"]


def spine_categories(graph: Parsed, kind: int) -> list[str]:
    """The layer categories (and additions) along one block kind's main line, input to output."""
    path = graph.path(f"kind{kind}/input", f"kind{kind}/output")[1:-1]
    out = []
    for name in path:
        node = graph.nodes[name]
        out.append("add" if "add" in node.classes else node.classes[-1])
    return out


def test_block_view_tells_post_from_pre_activation(tmp_path: Path, preact: rg.Spec) -> None:
    post = parse(rg.diagram(rg.load_spec("resnet18"), "blocks"))
    pre = parse(rg.diagram(preact, "blocks"))
    # He et al. 2016, Fig. 4: (a) original: conv-BN-ReLU-conv-BN, add, ReLU; (e) full
    # pre-activation: BN-ReLU-conv-BN-ReLU-conv, add.
    assert spine_categories(post, 1) == ["conv", "norm", "act", "conv", "norm", "add", "act"]
    assert spine_categories(pre, 1) == ["norm", "act", "conv", "norm", "act", "conv", "add"]
    assert "post-activation basic" in post.cluster_text("cluster_kind1")
    assert "pre-activation basic" in pre.cluster_text("cluster_kind1")


# He et al. 2016, Fig. 4, read top to bottom: the main line of each residual unit (basic blocks).
FIGURE_4 = {
    "post": ["conv", "norm", "act", "conv", "norm", "add", "act"],
    "bn_after_add": ["conv", "norm", "act", "conv", "add", "norm", "act"],
    "relu_before_add": ["conv", "norm", "act", "conv", "norm", "act", "add"],
    "relu_preact": ["act", "conv", "norm", "act", "conv", "norm", "add"],
    "pre": ["norm", "act", "conv", "norm", "act", "conv", "add"],
}


@pytest.mark.parametrize("unit", sorted(FIGURE_4))
def test_block_view_draws_each_residual_unit_of_figure_4(unit: str) -> None:
    graph = parse(rg.diagram(rg.load_spec(f"cifar_resnet110_{unit}"), "blocks"))
    # Kind 1 is the identity block of layer1; the bottleneck twin adds a third conv and norm.
    assert spine_categories(graph, 1) == FIGURE_4[unit]
    bottleneck = parse(rg.diagram(rg.load_spec(f"cifar_resnet164_{unit}"), "blocks"))
    line = spine_categories(bottleneck, 1)
    assert line.count("conv") == 3 and line[-3:] == FIGURE_4[unit][-3:]


def test_block_view_of_basic_and_bottleneck() -> None:
    basic = parse(rg.diagram(rg.load_spec("resnet18"), "blocks"))
    bottleneck = parse(rg.diagram(rg.load_spec("resnet50"), "blocks"))
    # Two kinds each: the projecting first block of a stage and the identity block.
    assert len(basic.clusters) == len(bottleneck.clusters) == 2
    assert spine_categories(bottleneck, 1) == ["conv", "norm", "act"] * 2 + ["conv", "norm", "add", "act"]
    # The drawn projection block is a downsampling one, so the stride shows: torchvision v1.5
    # strides in the 3x3.
    convs = [graph_node.text for graph_node in bottleneck.with_class("conv")]
    assert "3×3 conv 128 → 128, stride 2" in convs
    assert "1×1 conv 256 → 512, stride 2" in convs  # the projection
    projection = [edge for edge in bottleneck.edges_with_class("shortcut", "projection")]
    assert projection[0].tail == "kind1/input" and projection[-1].head == "kind1/add"
    identity = bottleneck.edges_with_class("shortcut", "identity")
    assert [(edge.tail, edge.head) for edge in identity] == [("kind2/input", "kind2/add")]
    grouped = parse(rg.diagram(rg.load_spec("resnext50_32x4d"), "blocks"))
    assert "3×3 conv 256 → 256, stride 2, 32 groups" in [node.text for node in grouped.with_class("conv")]


def test_pre_activation_projection_reads_the_normalised_input(preact: rg.Spec) -> None:
    graph = parse(rg.diagram(preact, "blocks"))
    first_shortcut = next(edge for edge in graph.edges_with_class("shortcut", "projection"))
    identity = next(edge for edge in graph.edges_with_class("shortcut", "identity"))
    # As in the live module (and timm's PreActBasicBlock): the projection branches after the
    # block's BN-ReLU, the identity shortcut takes the raw input.
    assert "act" in graph.nodes[first_shortcut.tail].classes
    assert identity.tail.endswith("/input")


@dataclasses.dataclass(frozen=True)
class Smudge:
    """A layer kind the diagram code has never heard of."""

    path: str
    channels: int
    filter_size: int
    stride: int
    params = 0
    macs = 0


def test_unknown_layer_kinds_still_draw() -> None:
    plan = lower(rg.load_spec("resnet18"))
    first = plan.stages[1].blocks[0]
    branch = (*first.branch[:1], Smudge("smudge", 128, 3, 2), *first.branch[1:])
    stage = dataclasses.replace(plan.stages[1], blocks=(dataclasses.replace(first, branch=branch),))
    plan = dataclasses.replace(plan, stages=(plan.stages[0], stage, *plan.stages[2:]))
    assert describe(Smudge("x", 128, 3, 2)).title == "3×3 Smudge"
    blocks = parse(make_diagram(plan, "blocks"))
    labels = [node.text for node in blocks.nodes.values()]
    assert "3×3 Smudge 128 ch, stride 2" in labels
    macro = parse(make_diagram(plan, "macro"))
    assert "3×3 Smudge /2" in macro.nodes["layer2.0"].text


def test_direction_and_bad_arguments() -> None:
    spec = rg.load_spec("resnet18")
    assert parse(rg.diagram(spec, direction="LR")).attrs["rankdir"] == "LR"
    assert parse(rg.diagram(spec)).attrs["rankdir"] == "TB"
    # Block kinds read in order either way: left to right (TB), top to bottom (LR; y grows upwards).
    tb, lr = (parse(rg.diagram(spec, "blocks", direction=d)) for d in ("TB", "LR"))
    tb_x = [float(tb.nodes[f"kind{k}/input"].attrs["pos"].split(",")[0]) for k in (1, 2)]
    lr_y = [float(lr.nodes[f"kind{k}/input"].attrs["pos"].split(",")[1]) for k in (1, 2)]
    assert tb_x[0] < tb_x[1] and lr_y[0] > lr_y[1]
    with pytest.raises(ValueError, match="view must be one of macro, blocks"):
        rg.diagram(spec, "micro")
    with pytest.raises(ValueError, match="direction must be one of TB, LR"):
        rg.diagram(spec, direction="BT")


def test_dot_is_deterministic_across_hash_seeds(tmp_path: Path) -> None:
    script = (
        "import sys, resnet_gen as rg\n"
        "from resnet_gen.diagram import render\n"
        "for name in ('resnet50', 'resnext50_32x4d'):\n"
        "    for view in ('macro', 'blocks'):\n"
        "        sys.stdout.write(render(rg.diagram(rg.load_spec(name), view), 'dot').decode())\n"
    )
    runs = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        runs.append(done.stdout)
    assert runs[0] == runs[1] == runs[2] and runs[0].count("digraph") == 4


def test_no_torch_on_the_drawing_path() -> None:
    script = (
        "import sys\n"
        "import resnet_gen as rg\n"
        "spec = rg.load_spec('resnet50')\n"
        "first = rg.diagram(spec)\n"
        # The function and the package share a name: still callable once the package is imported.
        "import resnet_gen.diagram.output\n"
        "second = rg.diagram(spec, 'blocks')\n"
        "assert first.source != second.source and 'digraph resnet50' in second.source\n"
        "from resnet_gen.cli import main\n"
        "main(['diagram', 'resnet50', '--format', 'dot', '--stdout'])\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digraph resnet50") and done.stdout.endswith("ok\n")


def test_backbone_draws_its_feature_maps_and_frozen_stages() -> None:
    overrides = ["backbone.features_only=true", "backbone.frozen_stages=1", "backbone.out_indices=[1,2,3,4]"]
    graph = parse(rg.diagram(rg.load_spec("resnet50", overrides)))
    features = graph.with_class("feature")
    # timm's feature_info for resnet50: channels 256/512/1024/2048 at reductions 4/8/16/32.
    assert [node.text for node in features] == [
        "feature 1 256×56×56 · /4",
        "feature 2 512×28×28 · /8",
        "feature 3 1024×14×14 · /16",
        "feature 4 2048×7×7 · /32",
    ]
    sources = [edge.tail for edge in graph.edges_with_class("feature")]
    assert sources == [f"layer{i}.1/add" for i in range(1, 5)]
    assert "output" not in graph.nodes and "head" not in graph.nodes
    # frozen_stages=1: the stem and layer1 (stem = 0).
    assert "frozen" in graph.nodes["stem"].text and "frozen" in graph.nodes["layer1/input"].text
    assert "frozen" not in graph.nodes["layer2/input"].text
