# make demo: set up (first run) and build every shipped spec. make test: set up and run all checks.
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench bench-quick setup clean readme experiments

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v dot >/dev/null 2>&1 || { echo "installing graphviz (dot)"; $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq graphviz; }
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (gallery test)"; $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/resnet-gen schema -o resnet-gen.schema.json  # the schema every spec's first line points editors at
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/resnet-gen validate specs/*.yaml
	$(BIN)/resnet-gen list
	$(BIN)/resnet-gen diagram
	$(BIN)/resnet-gen build
	$(BIN)/resnet-gen build --target inference
	$(BIN)/resnet-gen gallery

# README.md's catalog table is generated from specs/ and its field reference from the spec models;
# run this after adding or changing a spec or a field.
readme: $(STAMP)
	$(BIN)/resnet-gen list --markdown --update README.md
	$(BIN)/resnet-gen schema --markdown --update README.md

lint: $(STAMP)
	$(BIN)/ruff check resnet_gen tests
	$(BIN)/ruff format --check resnet_gen tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 -q

# The README's Experiments figures (docs/experiments/*.png): the CIFAR nets on the bundled 8x8
# digits, on one CPU thread (about half an hour); training runs go to experiments/.
FIGURES := docs/experiments
DIGITS  := --set input.size=8 --set input.channels=1
experiments: $(STAMP)
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
bench: $(STAMP)
	$(PY) benchmarks/bench.py

bench-quick: $(STAMP)
	$(PY) benchmarks/bench.py --quick

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
