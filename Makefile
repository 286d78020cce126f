# make demo: set up the core package (no torch) and rebuild the catalog's committed outputs.
# make test: add torch and the test references, then run every check. See README.md, "Two commands".
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
PIP    := $(PY) -m pip install -q -c constraints.txt
CORE   := $(VENV)/.core-installed
TORCH  := $(VENV)/.torch-installed
DEV    := $(VENV)/.dev-installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-quick lint torch bench bench-quick bench-compile setup clean readme experiments

setup: $(CORE)

# The core: validate, info, build, diagram, gallery. No torch.
$(CORE): pyproject.toml constraints.txt
	@command -v dot >/dev/null 2>&1 || { echo "installing graphviz (dot)"; $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq graphviz; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) -e .
	@touch $@

# torch for the live back end, weights and export. Without an NVIDIA GPU: the CPU build where the
# package index has it (a 192 MB wheel instead of about 5 GB of CUDA libraries and triton); else,
# and with a GPU, PyPI's CUDA build. See README.md, "Two commands".
TORCH_CPU := torch==2.13.0+cpu
torch: $(TORCH)
$(TORCH): $(CORE)
	@if command -v nvidia-smi >/dev/null 2>&1 || ! $(PY) -m pip install -q '$(TORCH_CPU)'; then $(PIP) -e '.[torch]'; fi
	@touch $@

# Everything the tests need: torch, torchvision and timm as references, onnx, lint tools, and
# Chromium for the gallery's browser test.
$(DEV): $(CORE)
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (the gallery's browser test)"; $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	$(PIP) -e '.[dev]'
	@touch $(TORCH) $@

# Rebuilds the catalog's committed outputs (generated/) and the gallery; the only command that writes them.
demo: $(CORE)
	$(BIN)/resnet-gen validate --catalog
	$(BIN)/resnet-gen diagram --catalog
	$(BIN)/resnet-gen build --catalog
	$(BIN)/resnet-gen build --catalog --target inference
	$(BIN)/resnet-gen gallery --catalog

# README.md's catalog table is generated from specs/ and its field reference from the spec models;
# run this after adding or changing a spec or a field.
readme: $(CORE)
	$(BIN)/resnet-gen list --markdown --update README.md
	$(BIN)/resnet-gen schema --markdown --update README.md
	$(BIN)/resnet-gen schema -o resnet-gen.schema.json

lint: $(DEV)
	$(BIN)/ruff check resnet_gen resnet_gen_entry.py tests benchmarks
	$(BIN)/ruff format --check resnet_gen resnet_gen_entry.py tests benchmarks
	$(BIN)/mypy
	$(BIN)/mypy --strict --ignore-missing-imports benchmarks/bench.py benchmarks/deploy.py benchmarks/gpu.py

# Tests keep Python's bytecode cache even where the environment turns it off: without it every
# worker and every subprocess test compiles the package again.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

# The whole suite: each test's name and the percentage done as it passes, the slowest at the end.
# worksteal: a worker that runs out of tests takes half of the other's queue, so neither idles at the end.
test: lint
	$(TEST_ENV) $(BIN)/pytest -n 2 --dist worksteal -v --durations=15

# The quick loop: every test on each family's smallest spec, without the minute-long ones, and
# at least one test of every test file (tests/conftest.py, --quick); see README.md, "Contributing".
test-quick: $(DEV)
	$(TEST_ENV) $(BIN)/pytest -n 2 --dist worksteal -v --quick --durations=10

# The README's Experiments figures (docs/experiments/*.png): the CIFAR nets on the bundled 8x8
# digits, on one CPU thread (about half an hour); training runs go to experiments/.
FIGURES := docs/experiments
DIGITS  := --set input.size=8 --set input.channels=1
experiments: $(DEV)
	mkdir -p $(FIGURES)
	OMP_NUM_THREADS=1 $(BIN)/resnet-gen analyze gradients cifar_plain56 cifar_resnet56 -o $(FIGURES)
	OMP_NUM_THREADS=1 $(BIN)/resnet-gen experiment degradation --data digits -o experiments/degradation
	cp experiments/degradation/degradation.png $(FIGURES)/
	OMP_NUM_THREADS=1 $(BIN)/resnet-gen analyze lesion experiments/degradation/cifar_resnet56/last.ckpt \
		experiments/degradation/cifar_plain56/last.ckpt -o $(FIGURES)
	OMP_NUM_THREADS=1 $(BIN)/resnet-gen analyze responses $(DIGITS) -o $(FIGURES) \
		cifar_plain56 experiments/degradation/cifar_plain56/last.ckpt \
		cifar_resnet56 experiments/degradation/cifar_resnet56/last.ckpt
	OMP_NUM_THREADS=1 $(BIN)/resnet-gen analyze paths cifar_resnet56 $(DIGITS) --data digits \
		--checkpoint experiments/degradation/cifar_resnet56/last.ckpt -o $(FIGURES)
	OMP_NUM_THREADS=1 $(BIN)/resnet-gen experiment ablation cifar_resnet20 --vary shortcut.type=A,B,C \
		--data digits -o experiments/ablation
	cp experiments/ablation/ablation.png $(FIGURES)/

# Side-by-side timings (ratios against torch / torchvision / timm); see benchmarks/RESULTS.md.
bench: $(DEV)
	$(PY) benchmarks/bench.py

bench-quick: $(DEV)
	$(PY) benchmarks/bench.py --quick

# The deployment section with torch.compile (freezing) as a reference row: compiling takes minutes per net here.
bench-compile: $(DEV)
	$(PY) benchmarks/bench.py --only deploy --compile

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
	find resnet_gen tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
