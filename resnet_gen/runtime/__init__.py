"""The helper ``nn.Module`` classes both back ends use, written once.

The live back end imports them; the source back end copies each class it needs, as it is written
here, into the emitted file (``resnet_gen.emit.helpers`` reads these files as text, so emitting
never imports torch). A class here therefore stands alone: it may use ``torch``, ``nn``, ``F``,
``math``, ``copy``, ``Any``, ``NamedTuple`` and ``Sequence`` (the imports an emitted file can
have) and builtins, nothing else of its module, and its ``forward`` must work under
``torch.jit.script`` as the emitted files do (the segmentation decoders excepted: they are
traced, not scripted; and the diffusion U-Net's modules, which ``torch.export`` and ONNX take).

This package's ``__init__`` imports nothing, so that reading the table below is free.
"""

from __future__ import annotations

# Each helper class and the module of this package that defines it.
HELPER_MODULES: dict[str, str] = {
    "BlurPool2d": "pooling",
    "DiffusionResBlock": "diffusion",
    "Downsample": "diffusion",
    "DownStage": "diffusion_stages",
    "DropPath": "residual",
    "EfficientChannelAttention": "attention",
    "EvoNormS0": "norms",
    "FeatureInfo": "features",
    "FPNDecoder": "decoders",
    "FilterResponseNormTLU": "norms",
    "FrozenBatchNorm2d": "norms",
    "MidStage": "diffusion_stages",
    "MultiTaskOutput": "decoders",
    "SamePadAvgPool2d": "pooling",
    "SelfAttention": "diffusion",
    "SinusoidalTimesteps": "diffusion",
    "SplitAttention": "attention",
    "SqueezeExcite": "attention",
    "StdConv2d": "convs",
    "TimestepMLP": "diffusion",
    "TransposedDecoder": "decoders",
    "UNet": "diffusion_stages",
    "UNetDecoder": "decoders",
    "Upsample": "diffusion",
    "UpStage": "diffusion_stages",
    "ZeroPadShortcut": "residual",
}
