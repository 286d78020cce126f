"""The helper ``nn.Module`` classes both back ends use, written once.

The live back end imports them; the source back end copies each class it needs, as it is written
here, into the emitted file (``resnet_gen.emit.helpers`` reads these files as text, so emitting
never imports torch). A class here therefore stands alone: it may use ``torch``, ``nn``, ``F``,
``math``, ``copy``, ``Any``, ``NamedTuple`` and ``torchdiffeq`` (the imports an emitted file can have) and
builtins, nothing else of its module, and its ``forward`` must work under ``torch.jit.script`` as
the emitted files do (the segmentation decoders excepted: they are traced, not scripted).

This package's ``__init__`` imports nothing, so that reading the table below is free.
"""

from __future__ import annotations

# Each helper class and the module of this package that defines it.
HELPER_MODULES: dict[str, str] = {
    "BlurPool2d": "pooling",
    "ConcatConv2d": "ode",
    "DropPath": "residual",
    "EfficientChannelAttention": "attention",
    "EulerODEBlock": "ode",
    "EvoNormS0": "norms",
    "FeatureInfo": "features",
    "FPNDecoder": "decoders",
    "FilterResponseNormTLU": "norms",
    "FrozenBatchNorm2d": "norms",
    "MultiTaskOutput": "decoders",
    "ODEBlock": "ode_solver",
    "ODEFunc": "ode",
    "SamePadAvgPool2d": "pooling",
    "SplitAttention": "attention",
    "SqueezeExcite": "attention",
    "StdConv2d": "convs",
    "TransposedDecoder": "decoders",
    "UNetDecoder": "decoders",
    "ZeroPadShortcut": "residual",
}
