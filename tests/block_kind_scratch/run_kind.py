"""Run in a copy of the package with the scratch kind's four files: validate, lower, report,
build, emit and draw a spec of the kind, and compare the live and emitted networks with a
forward written out here. Prints a JSON summary for the test."""

import importlib.util
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import resnet_gen as rg
from resnet_gen.diagram import diagram
from resnet_gen.emit import emit_source

root, spec_file = Path(sys.argv[1]), Path(sys.argv[2])
spec = rg.load_spec(spec_file)
plan = rg.lower(spec)
live = rg.build(spec).double().eval()
generator = torch.Generator().manual_seed(0)
with torch.no_grad():
    for tensor in list(live.parameters()) + [b for b in live.buffers() if b.is_floating_point()]:
        values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
        tensor.copy_(0.5 + values if tensor.dim() == 1 else (values - 0.5) * 0.5)
state = live.state_dict()


def bn(x, prefix):
    return F.batch_norm(
        x,
        state[f"{prefix}.running_mean"],
        state[f"{prefix}.running_var"],
        state[f"{prefix}.weight"],
        state[f"{prefix}.bias"],
    )


def reference(x):
    """relu(scale * bn(conv3x3(x)) + shortcut(x)) per block, after a conv-bn-relu stem."""
    x = F.relu(bn(F.conv2d(x, state["conv1.weight"], padding=1), "bn1"))
    for path, stride in (("layer1.0", 1), ("layer2.0", 2)):
        branch = bn(F.conv2d(x, state[f"{path}.conv1.weight"], stride=stride, padding=1), f"{path}.bn1")
        branch = branch * state[f"{path}.scale.weight"].view(1, -1, 1, 1)
        shortcut = x
        if f"{path}.downsample.0.weight" in state:
            shortcut = bn(F.conv2d(x, state[f"{path}.downsample.0.weight"], stride=stride), f"{path}.downsample.1")
        x = F.relu(branch + shortcut)
    return F.linear(x.mean((2, 3)), state["fc.weight"], state["fc.bias"])


x = torch.randn(2, 3, 16, 16, generator=generator, dtype=torch.float64)
source = emit_source(plan)
emitted_path = root / "emitted_scaled_net.py"
emitted_path.write_text(source, encoding="utf-8")
module_spec = importlib.util.spec_from_file_location("emitted_scaled_net", emitted_path)
module = importlib.util.module_from_spec(module_spec)
module_spec.loader.exec_module(module)
emitted = module.scaled_net().double().eval()
emitted.load_state_dict(state)
runtime_text = (root / "resnet_gen" / "runtime" / "channel_scale.py").read_text(encoding="utf-8")
class_text = runtime_text[runtime_text.index("class ChannelScale") :]
report = rg.analyze(spec)
print(
    json.dumps(
        {
            "package": rg.__file__,
            "types": [block.type for block in plan.blocks],
            "branch": [layer.path for layer in plan.blocks[1].branch],
            "scale_module": type(live.get_submodule("layer2.0.scale")).__module__,
            "live_vs_reference": (live(x) - reference(x)).abs().max().item(),
            "emitted_vs_live": (emitted(x) - live(x)).abs().max().item(),
            "emitted_class_is_runtime_text": class_text in source,
            "emitted_block_class": "class ScaledBlock(nn.Module):" in source,
            "emitted_init": "self.scale = ChannelScale(out_channels, init=0.5)" in source,
            "params": report.params,
            "state_params": sum(p.numel() for p in live.parameters()),
            "details": [row.detail for row in report.rows if row.name.startswith("layer")],
            "diagram": "channel scale" in diagram(spec, "blocks").source,
        }
    )
)
