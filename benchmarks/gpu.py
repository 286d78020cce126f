"""GPU throughput in one call, as the deployment issue asks: training images/s (bf16 autocast,
channels-last, SGD step) of the emitted resnet50 against torchvision's and timm's, and inference
images/s of the inference form (``--target inference``) against torchvision's model, each eager and
with ``torch.compile``, at batch sizes 64, 128 and 256. Meant to finish in about ten minutes on one
GPU (most of it compiling).

    python benchmarks/gpu.py                           # writes benchmarks/gpu_results.md too
    python benchmarks/gpu.py --batches 128 --no-compile

Contenders are measured interleaved (a round of steps of each, in rotating order, repeated); the
table gives median images/s and the median ratio ours / torchvision's with its min-max. The device
name, torch and CUDA versions and the date head the table, which is printed and written (atomically)
to ``--output``; paste it into benchmarks/RESULTS.md. Needs a CUDA device. ``--device cpu`` runs the
same code on the CPU as a smoke check of the script itself; its numbers say nothing about GPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import emitted_module, table

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "gpu_results.md"


def throughput(
    contenders: dict[str, Callable[[], object]], batch: int, steps: int, rounds: int, device: Any
) -> dict[str, list[float]]:
    """Images/s of each contender over ``rounds`` interleaved rounds of ``steps`` calls."""
    import torch

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    names = list(contenders)
    result: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                contenders[name]()
            synchronize()
            result[name].append(batch * steps / (time.perf_counter() - start))
    return result


def models(name: str, device: Any) -> dict[str, dict[str, Any]]:
    """Same weights everywhere: torchvision's, timm's and the emitted training form for training;
    torchvision's and the inference form (batch norms folded) for inference."""
    import timm
    import torch
    import torchvision

    folder = Path(tempfile.mkdtemp(prefix="resnet_gen_gpu_"))
    torchvision_model = getattr(torchvision.models, name)(weights=None)
    state = torchvision_model.state_dict()
    timm_model = timm.create_model(name, pretrained=False)
    timm_model.load_state_dict(state)
    emitted = getattr(emitted_module(name, folder), name)()
    emitted.load_state_dict(state)
    folded = getattr(emitted_module(name, folder, "inference"), name)(checkpoint=state)
    train = {"torchvision": torchvision_model, "timm": timm_model, "emitted": emitted}
    infer = {"torchvision": torchvision_model, "inference form": folded}
    for group in (train, infer):
        for model in group.values():
            model.to(device).to(memory_format=torch.channels_last)
    return {"train": train, "inference": infer}


def main(argv: Sequence[str] | None = None) -> int:
    import torch
    from torch.nn import functional

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default="resnet50")
    parser.add_argument("--batches", default="64,128,256", help="comma-separated batch sizes")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per contender (compiles here)")
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to smoke-test this script")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the table is written too")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this script measures GPU throughput (--device cpu only smoke-tests it)", file=sys.stderr)
        return 2
    try:
        batches = [int(b) for b in args.batches.split(",") if b]
    except ValueError:
        parser.error(f"--batches: comma-separated whole numbers, not {args.batches!r}")
    torch.backends.cudnn.benchmark = True
    name_of_device = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run)"
    header = [
        f"# resnet-gen GPU benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"# device: {name_of_device}, torch {torch.__version__}, CUDA {torch.version.cuda},"
        f" cuDNN {torch.backends.cudnn.version()}",  # type: ignore[no-untyped-call]
        f"# bf16 autocast, channels-last, {args.image_size}x{args.image_size}, batches {batches}",
    ]
    print("\n".join(header), flush=True)
    compile_modes = [False] if args.no_compile else [False, True]
    rows = []
    for name in args.nets.split(","):
        groups = models(name, device)
        for batch in batches:
            images = torch.randn(batch, 3, args.image_size, args.image_size, device=device)
            images = images.contiguous(memory_format=torch.channels_last)
            labels = torch.randint(0, 1000, (batch,), device=device)
            for mode, group in groups.items():
                for compiled in compile_modes:
                    contenders: dict[str, Callable[[], object]] = {}
                    for label, model in group.items():
                        model.train(mode == "train")
                        runner = torch.compile(model) if compiled else model
                        contenders[label] = (
                            _train_step(runner, model, images, labels, functional)
                            if mode == "train"
                            else _infer(runner, images)
                        )
                    for call in contenders.values():
                        for _ in range(args.warmup):
                            call()
                    ips = throughput(contenders, batch, args.steps, args.rounds, device)
                    for label in contenders:
                        if label == "torchvision":
                            continue
                        ratios = [a / b for a, b in zip(ips[label], ips["torchvision"], strict=True)]
                        rows.append(
                            [
                                name,
                                str(batch),
                                mode,
                                "compiled" if compiled else "eager",
                                label,
                                f"{statistics.median(ips[label]):.0f}",
                                f"{statistics.median(ips['torchvision']):.0f}",
                                f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})",
                            ]
                        )
                        print("  ".join(rows[-1]), file=sys.stderr, flush=True)
                    torch._dynamo.reset()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        table(
            "GPU throughput, images/s (ratio = ours / torchvision's images/s, same mode and compile setting;"
            " higher is faster)",
            [
                "net",
                "batch",
                "mode",
                "torch.compile",
                "ours",
                "ours images/s",
                "torchvision images/s",
                "ratio (min-max)",
            ],
            rows,
        )
    text = "\n".join(header) + "\n" + captured.getvalue()
    print(captured.getvalue(), end="")
    _write_atomically(args.output, text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temp, path)


def _train_step(runner: Any, model: Any, images: Any, labels: Any, functional: Any) -> Callable[[], object]:
    import torch

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> object:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            loss = functional.cross_entropy(runner(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    return step


def _infer(runner: Any, images: Any) -> Callable[[], object]:
    import torch

    def forward() -> object:
        with torch.inference_mode(), torch.autocast(images.device.type, dtype=torch.bfloat16):
            return runner(images)

    return forward


if __name__ == "__main__":
    sys.exit(main())
