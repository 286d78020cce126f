"""GPU throughput in one call: training and inference images/s of the emitted nets against
torchvision's / timm's, and inference images/s of the inference form (``--target inference``),
bf16 autocast, channels-last, with and without ``torch.compile``.

    python benchmarks/gpu.py                      # resnet50, batch 128, eager and compiled
    python benchmarks/gpu.py --nets resnet50,resnext50_32x4d --batch 64 --no-compile

Contenders are measured interleaved (a round of steps of each, in rotating order, repeated), and
the table gives the median images/s and the median ratio ours / reference with its min-max.
Needs a CUDA device; prints the device name for benchmarks/RESULTS.md. ``--device cpu`` runs the
same code on the CPU (bf16 autocast there too) as a smoke check of the script itself; its numbers
say nothing about GPUs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import emitted_module, reference_model, table


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


def main(argv: Sequence[str] | None = None) -> int:
    import torch
    from torch.nn import functional

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nets", default="resnet50")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per contender (compiles here)")
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu to smoke-test this script")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: this script measures GPU throughput (--device cpu only smoke-tests it)", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = True
    name_of_device = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run)"
    print(f"# resnet-gen GPU benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# device: {name_of_device}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(f"# bf16 autocast, channels-last, batch {args.batch}, {args.image_size}x{args.image_size}")

    folder = Path(tempfile.mkdtemp(prefix="resnet_gen_gpu_"))
    images = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    compile_modes = [False] if args.no_compile else [False, True]
    rows = []
    for name in args.nets.split(","):
        reference = reference_model(name)
        emitted = getattr(emitted_module(name, folder), name)()
        emitted.load_state_dict(reference.state_dict())
        # The inference form (batch norms folded, channels-last) on the same weights.
        folded = getattr(emitted_module(name, folder, "inference"), name)(checkpoint=reference.state_dict())
        for compiled in compile_modes:
            for mode in ("train", "inference"):
                contenders: dict[str, Callable[[], object]] = {}
                candidates = [("reference", reference), ("emitted", emitted)]
                if mode == "inference":
                    candidates.append(("inference form", folded))
                for label, base in candidates:
                    model: Any = base.to(device).to(memory_format=torch.channels_last).train(mode == "train")
                    runner = torch.compile(model) if compiled else model
                    contenders[label] = (
                        _train_step(runner, model, images, labels, functional)
                        if mode == "train"
                        else _infer(runner, images)
                    )
                for call in contenders.values():
                    for _ in range(args.warmup):
                        call()
                ips = throughput(contenders, args.batch, args.steps, args.rounds, device)
                for label in contenders:
                    if label == "reference":
                        continue
                    ratios = [a / b for a, b in zip(ips[label], ips["reference"], strict=True)]
                    rows.append(
                        [
                            name,
                            mode,
                            "compiled" if compiled else "eager",
                            label,
                            f"{statistics.median(ips[label]):.0f}",
                            f"{statistics.median(ips['reference']):.0f}",
                            f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})",
                        ]
                    )
                torch._dynamo.reset()
    table(
        "GPU throughput, images/s (ratio = ours / reference images/s; higher is faster)",
        ["net", "mode", "torch.compile", "ours", "ours images/s", "reference images/s", "ratio (min-max)"],
        rows,
    )
    return 0


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
