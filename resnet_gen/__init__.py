"""resnet-gen: a declarative architecture language and code generator for the ResNet family.

Importing the package does not import torch; only :func:`build` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis import Report, analyze
from .compile import compile_spec, load_spec, plan_of
from .errors import SpecError
from .plan import Plan, lower
from .spec import Spec
from .weights.report import WeightsError, WeightsReport

if TYPE_CHECKING:
    import graphviz
    from torch import nn

__version__ = "0.1.0"


def build(spec: Spec | Plan, **backbone: Any) -> nn.Module:
    """A live ``torch.nn.Module`` for ``spec``.

    Keyword arguments override the spec's ``backbone`` section, e.g.
    ``build(spec, features_only=True, out_indices=[2, 3, 4], output_stride=16, frozen_stages=1)``.
    """
    from .torch_check import require_torch

    require_torch("resnet_gen.build (a live torch.nn.Module)")
    from .live import build as build_live

    return build_live(plan_of(spec, **backbone))


def detection_backbone(spec: Spec, fpn: bool = True, trainable_layers: int = 3, **options: Any) -> nn.Module:
    """A backbone torchvision's ``FasterRCNN`` / ``MaskRCNN`` / ``RetinaNet`` accept: the spec's
    stages under a feature pyramid, ``trainable_layers`` as torchvision's. Needs torchvision;
    see :mod:`resnet_gen.detection`."""
    from .detection import detection_backbone as make

    return make(spec, fpn=fpn, trainable_layers=trainable_layers, **options)


def load_weights(
    model: nn.Module, checkpoint: str | Path | Mapping[str, Any], adapt: bool = True, *, strict: bool = False
) -> WeightsReport:
    """Load a local checkpoint file (``.pth``, ``.pt``, ``.safetensors``) or a state_dict into ``model``.

    Maps torchvision/timm ResNet and timm ResNetV2 keys, adapts the first conv to other input
    channels and skips a classifier of another size (``adapt``), and returns what it loaded,
    adapted, skipped and left missing. Never downloads. See :mod:`resnet_gen.weights`.
    """
    from .torch_check import require_torch

    require_torch("resnet_gen.load_weights")
    from .weights.load import load_weights as load

    return load(model, checkpoint, adapt, strict=strict)


def diagram(spec: Spec | Plan, view: str = "macro", *, direction: str = "TB") -> graphviz.Digraph:
    """A ``graphviz.Digraph`` of ``spec``: ``view="macro"`` (stages) or ``"blocks"`` (layer by layer).

    Render it with ``graph.pipe(format="svg")``, or with ``resnet_gen.diagram.render(graph, "svg")``
    for the reproducible bytes the CLI writes. Needs no torch.
    """
    from .diagram import diagram as draw_diagram

    return draw_diagram(plan_of(spec), view, direction=direction)


def emit(spec: Spec | Plan, source: str | Path | None = None, *, target: str = "training") -> str:
    """Standalone PyTorch source for ``spec``: one formatted file that needs only torch and builds
    the same module as :func:`build`. ``source`` names the spec file in the header. Needs no torch.

    ``target="inference"`` writes the deployment form instead: batch norms folded into the convs,
    channels-last, no gradients or training-only parts, and ``fold_batch_norms`` to load a
    checkpoint of the training form.
    """
    from .emit.source import emit_source

    return emit_source(plan_of(spec), source, target=target)


def evaluate(checkpoint: str | Path | nn.Module, data: str | None = None, **options: Any) -> dict[str, Any]:
    """Top-1 / top-5 accuracy, loss, per-class accuracy and the confusion matrix of a training
    checkpoint (or a live model with ``spec=``) on local ``data``, as plain data. See
    :func:`resnet_gen.train.evaluate`."""
    from .train import evaluate as run

    return run(checkpoint, data, **options)


def __getattr__(name: str) -> Any:
    # ``rg.train(spec, data=..., recipe=...)``: the training package, callable as its train().
    if name == "train":
        import importlib

        return importlib.import_module(".train", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Plan",
    "Report",
    "Spec",
    "SpecError",
    "WeightsError",
    "WeightsReport",
    "__version__",
    "analyze",
    "build",
    "compile_spec",
    "detection_backbone",
    "diagram",
    "emit",
    "evaluate",
    "load_spec",
    "load_weights",
    "lower",
]
