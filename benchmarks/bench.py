"""Side-by-side benchmarks: tool latency, scale, CPU network speed against torchvision / timm, the
inference emission's speed-up over the reference in eager mode, and deployment (the inference form,
fused and int8, against torch.compile with freezing and ONNX Runtime; see benchmarks/deploy.py).

Every comparison runs its contenders interleaved (one repetition of each, in rotating order, then
the next), so machine load hits them alike; a ratio's median and min-max come from the per-repetition
ratios. Absolute medians are printed too, but the ratios are the results. Each section runs in a
fresh process of its own.

    python benchmarks/bench.py            # the full run (minutes)
    python benchmarks/bench.py --quick    # a smoke run: each table once, few reps (a few minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NETS = ("resnet50", "resnext50_32x4d", "seresnet50", "resnet50d")
SCALE_SPECS = ("cifar_resnet1202", "cifar_preact_resnet1001")
GROWTH_DEPTHS = (20, 32, 44, 56, 110, 1202)
# The budgets for one scale step on the 2-core machine, in seconds.
SCALE_BUDGETS = {"validate+analyse": 0.5, "emit": 0.5, "diagram": 2.0, "live build": 5.0}
SECTIONS = ("tool", "scale", "network", "inference", "trainer", "deploy")
# glibc malloc returns big freed blocks to the system, so a fresh process page-faults on every
# activation; raising these thresholds keeps them in a warm heap, as a long-running process has.
WARM_HEAP = {"MALLOC_MMAP_THRESHOLD_": str(1 << 28), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        return cls(statistics.median(values), min(values), max(values))


def interleaved(contenders: dict[str, Callable[[], object]], reps: int, warmup: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each contender, ``reps`` times, rotating the order every repetition."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def ratio_stats(ours: Sequence[float], reference: Sequence[float]) -> Stats:
    return Stats.of([a / b for a, b in zip(ours, reference, strict=True)])


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms" if seconds < 10 else f"{seconds:9.2f} s "


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    sys.stdout.flush()


def ratio_cell(stats: Stats) -> str:
    return f"{stats.median:.3f} ({stats.low:.3f}-{stats.high:.3f})"


# Tool latency ------------------------------------------------------------------------------------


def tool_latency(reps: int, warmup: int) -> None:
    # Byte-compile the package, as installing it does (torch's bytecode is in site-packages): a
    # checkout run with PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module on every run.
    compileall.compile_dir(ROOT / "resnet_gen", quiet=1)
    out = Path(tempfile.mkdtemp(prefix="resnet_gen_bench_"))
    tool = str(BIN / "resnet-gen")
    specs = sorted(str(p) for p in (ROOT / "specs").glob("*.yaml"))
    commands: dict[str, list[str]] = {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "resnet-gen build specs/resnet152.yaml": [tool, "build", "specs/resnet152.yaml", "-o", str(out), "--force"],
        # The same with the templates compiled afresh (RESNET_GEN_CACHE=off, below).
        "resnet-gen build resnet152, templates compiled afresh": [
            tool,
            "build",
            "specs/resnet152.yaml",
            "-o",
            str(out / "fresh"),
            "--force",
        ],
        "resnet-gen info specs/resnet152.yaml": [tool, "info", "specs/resnet152.yaml"],
        f"resnet-gen validate specs/*.yaml ({len(specs)}), --no-cache": [tool, "validate", "--no-cache", *specs],
        # The same in one process (the default spreads a long list over the cores).
        f"resnet-gen validate specs/*.yaml ({len(specs)}), one process, -j 1 --no-cache": [
            tool,
            "validate",
            "--no-cache",
            "-j1",
            *specs,
        ],
        # The passes on record (the first run fills the record).
        f"resnet-gen validate specs/*.yaml ({len(specs)}), again": [tool, "validate", *specs],
    }
    # The caches (passes on record, compiled templates) in a folder of this run's.
    env = {**os.environ, "RESNET_GEN_CACHE": str(out / "cache")}

    def runner(name: str, argv: list[str]) -> Callable[[], None]:
        here = {**env, "RESNET_GEN_CACHE": "off"} if name.endswith("compiled afresh") else env

        def run() -> None:
            subprocess.run(argv, cwd=ROOT, env=here, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        return run

    times = interleaved({name: runner(name, argv) for name, argv in commands.items()}, reps, warmup)
    reference = times['python -c "import torch"']
    rows = []
    for name, values in times.items():
        ratio = ratio_stats(values, reference)
        verdict = "" if name.startswith("python") else ("ok" if ratio.median <= 0.25 else "over 0.25")
        rows.append([name, fmt_s(Stats.of(values).median), ratio_cell(ratio), verdict])
    table(
        f"Tool latency: whole cold process vs `import torch` ({reps} interleaved reps; target ratio <= 0.25)",
        ["command", "median", "ratio to import torch (min-max)", "target"],
        rows,
    )


# Scale -------------------------------------------------------------------------------------------


def scale_steps(name: str) -> dict[str, Callable[[], object]]:
    """The four steps on catalog spec ``name``, each from the spec file (nothing cached between calls)."""
    import resnet_gen as rg
    from resnet_gen.diagram import draw

    path = ROOT / "specs" / f"{name}.yaml"
    spec = rg.load_spec(path)

    def validate_analyse() -> object:
        return rg.analyze(rg.lower(rg.load_spec(path)))

    return {
        "validate+analyse": validate_analyse,
        "emit": lambda: rg.emit(spec),
        "diagram": lambda: draw(spec),
        "live build": lambda: rg.build(spec),
    }


def distinct_blocks_spec() -> Any:
    """2,000 blocks that all differ (a pruned net with random inner widths), within every cap:
    its macro view merges them into ranges, so drawing it must stay within the diagram budget."""
    import random

    import resnet_gen as rg

    generator = random.Random(0)
    stages = [
        {
            "blocks": 500,
            "width": width,
            "stride": 1 if index == 0 else 2,
            "inner_channels": [[8 * generator.randint(1, width // 8) for _ in range(2)] for _ in range(500)],
        }
        for index, width in enumerate((64, 128, 256, 512))
    ]
    return rg.load_spec("resnet50", overrides={"name": "pruned_2000_distinct", "stages": stages})


def scale(names: Sequence[str], depths: Sequence[int], reps: int, warmup: int) -> None:
    from resnet_gen.diagram import draw

    rows = []
    distinct = distinct_blocks_spec()
    stats = Stats.of(interleaved({"diagram": lambda: draw(distinct)}, reps, warmup)["diagram"])
    budget = SCALE_BUDGETS["diagram"]
    rows.append(
        [
            "2,000 distinct blocks",
            "diagram",
            fmt_s(stats.median),
            f"{stats.low:.3f}-{stats.high:.3f} s",
            f"{stats.median / budget:.2f}",
            "ok" if stats.median <= budget else "over",
        ]
    )
    for name in names:
        times = interleaved(scale_steps(name), reps, warmup)
        for step, values in times.items():
            stats = Stats.of(values)
            budget = SCALE_BUDGETS[step]
            verdict = "ok" if stats.median <= budget else "over"
            rows.append(
                [
                    name,
                    step,
                    fmt_s(stats.median),
                    f"{stats.low:.3f}-{stats.high:.3f} s",
                    f"{stats.median / budget:.2f}",
                    verdict,
                ]
            )
    table(
        f"Scale: in-process step times ({reps} reps; ratio = median / budget, budget: "
        + ", ".join(f"{k} {v} s" for k, v in SCALE_BUDGETS.items())
        + ")",
        ["spec", "step", "median", "min-max", "of budget", "target"],
        rows,
    )
    if not depths:
        return
    growth: dict[int, dict[str, float]] = {}
    for depth in depths:
        times = interleaved(scale_steps(f"cifar_resnet{depth}"), reps, warmup)
        growth[depth] = {step: statistics.median(values) for step, values in times.items()}
    base = depths[0]
    steps = list(SCALE_BUDGETS)
    rows = []
    for depth in depths:
        # Time per residual block relative to the smallest net: flat (or falling) means linear (or better).
        blocks, base_blocks = (depth - 2) // 2, (base - 2) // 2
        cells = []
        for step in steps:
            per_block = (growth[depth][step] / blocks) / (growth[base][step] / base_blocks)
            cells.append(f"{fmt_s(growth[depth][step]).strip()} ({per_block:.2f})")
        rows.append([f"cifar_resnet{depth}", str(blocks), *cells])
    table(
        f"Scale growth, ResNet-{base} to ResNet-{depths[-1]}: median time (time per block relative to ResNet-{base}; <= 1 is linear or better)",
        ["spec", "blocks", *steps],
        rows,
    )


# Network speed -----------------------------------------------------------------------------------


def reference_model(name: str) -> Any:
    if name in ("resnet50", "resnext50_32x4d"):
        import torchvision

        return getattr(torchvision.models, name)(weights=None)
    import timm

    return timm.create_model(name, pretrained=False)


def emitted_module(name: str, folder: Path, target: str = "training") -> ModuleType:
    import resnet_gen as rg

    path = folder / f"bench_emitted_{name}_{target}.py"
    path.write_text(rg.emit(rg.load_spec(name), target=target), encoding="utf-8")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[path.stem] = module
    module_spec.loader.exec_module(module)
    return module


def network_speed(nets: Sequence[str], batch: int, size: int, reps: int, warmup: int) -> None:
    import torch
    from torch.nn import functional

    import resnet_gen as rg

    folder = Path(tempfile.mkdtemp(prefix="resnet_gen_bench_"))
    torch.manual_seed(0)
    images = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, 1000, (batch,))
    rows = []
    for name in nets:
        reference = reference_model(name)
        models = {"reference": reference, "live": rg.build(rg.load_spec(name))}
        try:
            models["emitted"] = getattr(emitted_module(name, folder), name)()
        except Exception as error:  # the emitted file is optional for this table; say why it is missing
            print(f"(emitted {name} unavailable: {type(error).__name__}: {error})")
        state = reference.state_dict()
        for label, model in models.items():
            if label != "reference":
                model.load_state_dict(state)  # same weights, so the same arithmetic on the same numbers

        def forward(model: Any) -> Callable[[], object]:
            def run() -> object:
                with torch.inference_mode():
                    return model(images)

            return run

        def train_step(model: Any) -> Callable[[], object]:
            def run() -> object:
                model.zero_grad(set_to_none=True)
                loss = functional.cross_entropy(model(images), labels)
                loss.backward()  # type: ignore[no-untyped-call]
                return loss

            return run

        for mode, make, train in (("eval forward", forward, False), ("train step", train_step, True)):
            for model in models.values():
                model.train(train)
            times = interleaved({label: make(model) for label, model in models.items()}, reps, warmup)
            ref = times["reference"]
            for label in models:
                if label == "reference":
                    continue
                ratio = ratio_stats(times[label], ref)
                verdict = "ok" if 0.97 <= ratio.median <= 1.03 else ("faster" if ratio.median < 0.97 else "slower")
                rows.append(
                    [
                        name,
                        mode,
                        label,
                        fmt_s(statistics.median(times[label])),
                        fmt_s(statistics.median(ref)),
                        ratio_cell(ratio),
                        verdict,
                    ]
                )
                # Progress on stderr: the full table comes at the end, after minutes on a slow machine.
                print("  ".join(c.strip() for c in rows[-1]), file=sys.stderr, flush=True)
        del models
    table(
        f"Network speed, CPU float32, batch {batch}, {size}x{size}, {torch.get_num_threads()} threads ({reps} interleaved reps; "
        "ratio = ours / reference time, target 0.97-1.03)",
        ["net", "mode", "ours", "ours median", "reference median", "ratio (min-max)", "target"],
        rows,
    )


# Inference emission ------------------------------------------------------------------------------

# The target: the inference form at least this much faster than torchvision's eager model.
INFERENCE_TARGET = 1.25


def randomize_norms(model: Any) -> None:
    """Batch norms with the statistics and affine terms of a trained net, not of a fresh one."""
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                assert module.running_mean is not None and module.running_var is not None  # tracked statistics
                module.running_mean.normal_(0.0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.2, generator=generator)


def inference_speed(nets: Sequence[str], batch: int, size: int, reps: int, warmup: int) -> None:
    """Eval forward of ``resnet-gen build --target inference`` against the reference model in eager
    mode on the same weights (both under ``torch.inference_mode``), and how far their outputs differ."""
    import torch

    folder = Path(tempfile.mkdtemp(prefix="resnet_gen_bench_"))
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    rows = []
    for name in nets:
        reference = reference_model(name).eval()
        randomize_norms(reference)  # real running statistics, so the folding has work to do
        models = {
            "reference": reference,
            "inference": getattr(emitted_module(name, folder, "inference"), name)(checkpoint=reference.state_dict()),
        }

        def forward(model: Any) -> Callable[[], object]:
            def run() -> object:
                with torch.inference_mode():
                    return model(images)

            return run

        with torch.inference_mode():
            expected, got = reference(images), models["inference"](images)
        error = ((got - expected).abs().max() / expected.abs().max()).item()
        times = interleaved({label: forward(model) for label, model in models.items()}, reps, warmup)
        speedup = Stats.of([r / i for r, i in zip(times["reference"], times["inference"], strict=True)])
        verdict = "ok" if speedup.median >= INFERENCE_TARGET else f"under {INFERENCE_TARGET}"
        rows.append(
            [
                name,
                fmt_s(statistics.median(times["inference"])),
                fmt_s(statistics.median(times["reference"])),
                ratio_cell(speedup),
                f"{error:.1e}",
                verdict,
            ]
        )
        del models
    heap = "warm heap (glibc malloc thresholds raised)" if warm_heap() else "default heap"
    table(
        f"Inference emission, CPU float32 eval forward, batch {batch}, {size}x{size}, {torch.get_num_threads()} threads, {heap}"
        f" ({reps} interleaved reps; speed-up = reference / ours time, target >= {INFERENCE_TARGET})",
        ["net", "inference median", "reference median", "speed-up (min-max)", "max rel. diff", "target"],
        rows,
    )


# Trainer -----------------------------------------------------------------------------------------

TRAINER_TARGET = 0.97
TRAINER_SPEC = ("cifar_resnet20", ["input.size=32"])
TRAINER_BATCH = 64


def trainer_speed(images: int, reps: int, warmup: int) -> None:
    """Images/s of ``rg.train`` (one epoch, no validation, no progress bar) against a bare loop
    written out here over the same network, data set, batch and optimizer; each rep builds its
    model and opens its data, as a run does."""
    import torch

    import resnet_gen as rg
    from resnet_gen.data import open_dataset

    name, overrides = TRAINER_SPEC
    spec = rg.load_spec(name, overrides)
    source = f"synthetic:{images}"
    recipe = {"batch_size": TRAINER_BATCH, "epochs": 1, "augment.type": "none", "schedule.type": "constant"}

    def trainer() -> object:
        return rg.train(spec, data=source, recipe="cifar", overrides=recipe, validate=False)

    def bare_loop() -> object:
        torch.manual_seed(0)
        model = rg.build(spec)
        dataset = open_dataset(source, "train", size=32, num_classes=10)
        loader = torch.utils.data.DataLoader(dataset, batch_size=TRAINER_BATCH, shuffle=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        criterion = torch.nn.CrossEntropyLoss()
        model.train()
        for data, target in loader:
            optimizer.zero_grad()
            loss = criterion(model(data), target)
            loss.backward()
            optimizer.step()
        return model

    times = interleaved({"resnet-gen train": trainer, "bare loop": bare_loop}, reps, warmup)
    # Throughput ratio = bare time / trainer time (images are the same), so >= 1 means no overhead.
    ratio = Stats.of([b / t for t, b in zip(times["resnet-gen train"], times["bare loop"], strict=True)])
    rows = []
    for contender, values in times.items():
        median = Stats.of(values).median
        cell = ratio_cell(ratio) if contender == "resnet-gen train" else "1.000 (1.000-1.000)"
        verdict = (
            ("ok" if ratio.median >= TRAINER_TARGET else f"under {TRAINER_TARGET}") if contender != "bare loop" else ""
        )
        rows.append([contender, fmt_s(median), f"{images / median:,.0f}", cell, verdict])
    table(
        f"Trainer throughput, CPU float32, {name} at 32x32, {images} synthetic images, batch {TRAINER_BATCH},"
        f" {torch.get_num_threads()} threads ({reps} interleaved reps; ratio = trainer images/s over the bare"
        f" loop's, target >= {TRAINER_TARGET})",
        ["contender", "median per epoch", "images/s", "ratio (min-max)", "target"],
        rows,
    )


def warm_heap() -> bool:
    return all(os.environ.get(key) == value for key, value in WARM_HEAP.items())


# Main --------------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: few reps, one net, small growth table")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections: {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--deploy-nets",
        help="comma-separated nets for the deploy section (default resnet18,"
        "resnet50,resnext50_32x4d,cifar_resnet56; quick resnet18)",
    )
    parser.add_argument("--deploy-batches", default="1,8", help="comma-separated batch sizes for the deploy section")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="add torch.compile (with freezing) to the deploy section: compiling the four nets for"
        " batch 1 and 8 takes well over ten minutes on 2 cores (make bench-compile)",
    )
    parser.add_argument("--reps", type=int, help="repetitions per contender (default 9, quick 2)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls of each contender first")
    parser.add_argument("--nets", help=f"comma-separated nets (default {','.join(NETS)}; quick resnet50)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--scale-specs", help=f"comma-separated catalog specs (default {','.join(SCALE_SPECS)})")
    parser.add_argument("--depths", help="comma-separated CIFAR ResNet depths for the growth table ('' for none)")
    parser.add_argument("--train-images", type=int, help="synthetic images per trainer run (default 1024, quick 128)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one section, in its own process
    args = parser.parse_args(argv)
    unknown = {s.strip() for s in args.only.split(",")} - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    args.reps = args.reps or (2 if args.quick else 9)
    args.nets = args.nets.split(",") if args.nets else (["resnet50"] if args.quick else list(NETS))
    args.scale_specs = args.scale_specs.split(",") if args.scale_specs else list(SCALE_SPECS)
    if args.depths is None:
        args.depths = "20,56,1202" if args.quick else ",".join(map(str, GROWTH_DEPTHS))
    args.depths = [int(d) for d in args.depths.split(",") if d]
    args.train_images = args.train_images or (128 if args.quick else 1024)
    args.only = {s.strip() for s in args.only.split(",")}
    from deploy import DEPLOY_NETS

    args.deploy_nets = (
        args.deploy_nets.split(",") if args.deploy_nets else (["resnet18"] if args.quick else list(DEPLOY_NETS))
    )
    args.deploy_batches = [int(b) for b in args.deploy_batches.split(",") if b]
    args.compile = args.compile and not args.quick
    return args


def run_sections_apart(argv: Sequence[str], sections: Sequence[str], *, warm_rerun: bool = True) -> int:
    """Each section in a fresh process, so one section's allocator and thread-pool state (a training
    step leaves the heap warm) cannot change the next one's numbers; the inference section runs
    twice, with glibc's default heap and with a warm one, because the two give different speed-ups
    (once in a quick run, which prints each table once)."""
    passed = [a for i, a in enumerate(argv) if a != "--only" and (i == 0 or argv[i - 1] != "--only")]
    passed = [a for a in passed if not a.startswith("--only=")]
    runs: list[tuple[str, dict[str, str]]] = [(section, {}) for section in sections]
    if sys.platform == "linux" and warm_rerun:
        runs.extend((section, WARM_HEAP) for section in ("inference", "deploy") if section in sections)
    for section, extra_env in runs:
        child = [sys.executable, __file__, *passed, "--only", section, "--child"]
        code = subprocess.run(child, env={**os.environ, **extra_env}).returncode
        if code:
            return code
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    os.chdir(ROOT)
    if not args.child:
        print(
            f"# resnet-gen benchmarks ({'quick' if args.quick else 'full'}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        )
        print(
            f"# python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        return run_sections_apart(argv, [s for s in SECTIONS if s in args.only], warm_rerun=not args.quick)
    if "tool" in args.only:
        tool_latency(args.reps, args.warmup)
    if "scale" in args.only:
        scale(args.scale_specs, args.depths, args.reps, args.warmup)
    if "network" in args.only:
        network_speed(args.nets, args.batch, args.image_size, args.reps, args.warmup)
    if "inference" in args.only:
        inference_speed(args.nets, args.batch, args.image_size, args.reps, args.warmup)
    if "trainer" in args.only:
        trainer_speed(args.train_images, args.reps, args.warmup)
    if "deploy" in args.only:
        from deploy import deploy_speed

        deploy_speed(args.deploy_nets, args.deploy_batches, args.reps, args.warmup, compile_reference=args.compile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
