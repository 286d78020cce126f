"""The experiments of the ResNet papers as functions returning plain dataclasses, so a notebook
can plot them its own way (``resnet_gen.analyses.figures`` draws them as the papers did).

At initialisation: :func:`gradient_flow` (gradient norm per block and stage), :func:`shattered_gradients`
(Balduzzi et al. 2017), :func:`path_lengths` (no torch) and :func:`path_gradients` (Veit et al. 2016).
Trained: :func:`load_trained` and :func:`read_split`, then :func:`lesion` (Veit et al. 2016) and
:func:`layer_responses` (He et al. 2015 Fig. 7). Training: :func:`degradation` and :func:`ablation`.
Importing this package does not import torch; the functions that need it import it when called.
"""

from __future__ import annotations

from .common import Batch
from .experiments import Experiment, Run, ablation, degradation
from .gradients import GradientFlow, GradientNorm, gradient_flow
from .lesion import Lesion, RandomLesion, SingleDeletion, lesion
from .path_gradients import LengthGradient, PathGradients, path_gradients
from .paths import PathLengths, path_lengths
from .responses import Response, Responses, layer_responses
from .shattered import Correlation, ShatteredGradients, shattered_gradients
from .structure import BlockSite, block_sites, deleted_blocks, gradient_routes, swapped_blocks
from .trained import EvalData, Trained, error_rate, load_trained, read_split

__all__ = [
    "Batch",
    "BlockSite",
    "Correlation",
    "EvalData",
    "Experiment",
    "GradientFlow",
    "GradientNorm",
    "LengthGradient",
    "Lesion",
    "PathGradients",
    "PathLengths",
    "RandomLesion",
    "Response",
    "Responses",
    "Run",
    "ShatteredGradients",
    "SingleDeletion",
    "Trained",
    "ablation",
    "block_sites",
    "degradation",
    "deleted_blocks",
    "error_rate",
    "gradient_flow",
    "gradient_routes",
    "layer_responses",
    "lesion",
    "load_trained",
    "path_gradients",
    "path_lengths",
    "read_split",
    "shattered_gradients",
    "swapped_blocks",
]
