"""Which inference forms get ``fuse_for_cpu`` and ``freeze_for_cpu`` (templates/fuse.py.j2): those with a ReLU to fuse."""

from __future__ import annotations

from ..plan import Plan
from ..plan.layers import Act, Conv

# The names templates/fuse.py.j2 defines in the file.
FUSION_NAMES = {
    "freeze_for_cpu",
    "fuse_for_cpu",
    "_fused_conv",
    "_CONV_POINTWISE",
    "_TINY_CONV_MACS",
    "_WithThreads",
    "_conv_macs",
}


def fusable(plan: Plan) -> bool:
    """True when the network has plain convs and ReLUs, the pairs oneDNN's fused conv calls take."""
    layers = plan.layers
    relu = any(isinstance(layer, Act) and layer.type == "relu" for layer in layers)
    relu = relu or any(block.post_activation == "relu" for block in plan.blocks)
    return relu and any(type(layer) is Conv for layer in layers)
