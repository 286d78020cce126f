"""The deployment section of ``benchmarks/bench.py``: eval forward on the CPU of the emitted forms
(the inference form as written, with ``fuse_for_cpu``, with ``freeze_for_cpu`` for each batch's
shape, and the int8 form) against the same network in torch eager mode, ONNX Runtime on the
reference's ONNX export and on ours, and (``--compile``: minutes of compiling per net on 2 cores)
``torch.compile`` with freezing, all on the same weights, interleaved. Where ``freeze_for_cpu``
chose one thread for tiny work, a row with the graph frozen for all of torch's threads follows.

Speed-ups are per-repetition ratios (reference time / contender time), median and min-max, against
torch eager, ONNX Runtime on the reference's export and ``freeze_for_cpu`` (so the int8 rows say
their speed-up over the frozen float form); the arithmetic rate is the network's MACs (exact, from
the plan) per second of the median.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import Stats, emitted_module, fmt_s, interleaved, randomize_norms, ratio_cell, table

# The nets: torchvision's three and a CIFAR net at its own size.
DEPLOY_NETS = ("resnet18", "resnet50", "resnext50_32x4d", "cifar_resnet56")
DEPLOY_BATCHES = (1, 8)


def reference_for(name: str) -> tuple[Any, int]:
    """The eager reference and its input size: torchvision's model, or the live module of a catalog
    spec torchvision does not have (a CIFAR net at 32x32)."""
    import torchvision

    import resnet_gen as rg

    if hasattr(torchvision.models, name):
        return getattr(torchvision.models, name)(weights=None), 224
    spec = rg.load_spec(name)
    size = spec.input.size if isinstance(spec.input.size, int) else spec.input.size[0]
    return rg.build(spec), size


def onnx_session(model: Any, example: Any, path: Path) -> Callable[[Any], Any]:
    """ONNX Runtime on ``model`` exported by resnet_gen.export (dynamo exporter, dynamic batch)."""
    import onnxruntime
    import torch

    from resnet_gen.export import export_onnx

    export_onnx(model, path, example=example)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(images: Any) -> Any:
        return torch.from_numpy(session.run(None, {name: images.numpy()})[0])

    return run


def deploy_speed(
    nets: Sequence[str], batches: Sequence[int], reps: int, warmup: int, *, compile_reference: bool
) -> None:
    import torch

    import resnet_gen as rg

    warnings.simplefilter("ignore")  # the quantisation and export APIs warn about their own futures
    folder = Path(tempfile.mkdtemp(prefix="resnet_gen_deploy_"))
    rows = []
    chosen: dict[tuple[str, int], int] = {}
    for name in nets:
        reference, size = reference_for(name)
        reference.eval()
        randomize_norms(reference)  # real running statistics, so the folding has work to do
        state = reference.state_dict()
        inference_file = emitted_module(name, folder, "inference")
        int8_file = emitted_module(name, folder, "int8")
        plain = getattr(inference_file, name)(checkpoint=state)
        fused = inference_file.fuse_for_cpu(getattr(inference_file, name)(checkpoint=state))
        generator = torch.Generator().manual_seed(0)
        calibration = [torch.randn(4, 3, size, size, generator=generator) for _ in range(2)]
        quantised = getattr(int8_file, name)(calibration=calibration, checkpoint=state)
        frozen_int8 = int8_file.freeze_int8(quantised)
        example = torch.randn(2, 3, size, size, generator=generator)
        ort_reference = onnx_session(reference, example, folder / f"{name}_reference.onnx")
        ort_ours = onnx_session(plain, example, folder / f"{name}_inference.onnx")
        compiled = None
        if compile_reference:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # weights as constants: conv+ReLU fusion and pre-packing
            compiled = torch.compile(reference, dynamic=False)  # one static graph per batch, as freeze_for_cpu
        macs = rg.lower(rg.load_spec(name, [f"input.size={size}"])).macs
        for batch in batches:
            images = torch.randn(batch, 3, size, size, generator=generator)
            contenders: dict[str, Callable[[], object]] = {"torch eager (reference)": forward(reference, images)}
            if compiled is not None:
                contenders["torch.compile, freezing"] = forward(compiled, images)
            contenders["ONNX Runtime, reference export"] = forward(ort_reference, images)
            contenders["inference form"] = forward(plain, images)
            contenders["inference form + fuse_for_cpu"] = forward(fused, images)
            frozen = inference_file.freeze_for_cpu(getattr(inference_file, name)(checkpoint=state), images)
            contenders["inference form + freeze_for_cpu"] = forward(frozen, images)
            contenders["ONNX Runtime, inference-form export"] = forward(ort_ours, images)
            contenders["int8 form"] = forward(quantised, images)
            contenders["int8 form + freeze_int8"] = forward(frozen_int8, images)
            threads = getattr(frozen, "threads", torch.get_num_threads())
            if threads != torch.get_num_threads():  # freeze_for_cpu chose fewer threads for tiny work
                everyone = inference_file.freeze_for_cpu(
                    getattr(inference_file, name)(checkpoint=state), images, threads=torch.get_num_threads()
                )
                contenders[f"freeze_for_cpu, {torch.get_num_threads()} threads"] = forward(everyone, images)
            chosen[(name, batch)] = threads
            with torch.inference_mode():
                expected = reference(images)
                errors = {
                    label: ((call() - expected).abs().max() / expected.abs().max()).item()
                    for label, call in contenders.items()
                }
            times = interleaved(contenders, reps, warmup)
            eager = times["torch eager (reference)"]
            onnx = times["ONNX Runtime, reference export"]
            float_frozen = times["inference form + freeze_for_cpu"]
            for label, values in times.items():
                median = statistics.median(values)
                rows.append(
                    [
                        name,
                        str(batch),
                        label,
                        fmt_s(median),
                        ratio_cell(Stats.of([r / t for r, t in zip(eager, values, strict=True)])),
                        ratio_cell(Stats.of([o / t for o, t in zip(onnx, values, strict=True)])),
                        ratio_cell(Stats.of([f / t for f, t in zip(float_frozen, values, strict=True)])),
                        f"{macs * batch / median / 1e9:.1f}",
                        f"{errors[label]:.1e}",
                    ]
                )
                print("  ".join(c.strip() for c in rows[-1]), file=sys.stderr, flush=True)
        if compiled is not None:
            torch._dynamo.reset()
    table(
        f"Deployment, CPU eval forward, float32 (int8 form: int8), {torch.get_num_threads()} threads, {heap_name()}"
        f" ({reps} interleaved reps; speed-up = contender's time divided into the reference's, median (min-max))",
        [
            "net",
            "batch",
            "contender",
            "median",
            "vs torch eager",
            "vs ONNX Runtime",
            "vs freeze_for_cpu",
            "GMAC/s",
            "max rel. diff",
        ],
        rows,
    )
    print("\nfreeze_for_cpu's threads: " + ", ".join(f"{n} batch {b}: {t}" for (n, b), t in chosen.items()))


def forward(model: Callable[[Any], object], images: Any) -> Callable[[], object]:
    """One timed call: ``model`` (a module, or an ONNX Runtime session's runner) on ``images``."""
    import torch

    def run() -> object:
        with torch.inference_mode():
            return model(images)

    return run


def heap_name() -> str:
    from bench import warm_heap

    return "warm heap (glibc malloc thresholds raised)" if warm_heap() else "default heap"
