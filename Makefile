# Two commands on a fresh machine:  `make demo` (the main job end to end)  and  `make test`.
# Both create the virtual environment on first use (and refresh it when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edge-rcnn-installed
DATA   ?= data/translate
RUN    ?= runs/translate
OUT    ?= out/translate

.PHONY: venv demo test test-fast test-pi bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Generate a built-in motion set (objects moving inside the frame: only where they go, frame
# after frame, tells the label), train the default model, quantize to int8 TFLite and ONNX
# (verified against the float model, and against a floor of 90% top-1 that a model blind to
# motion cannot reach), and predict a held-out clip with the exported file.
# Rerunning it reuses the dataset and resumes (or just reloads) the finished training run.
demo: $(STAMP) $(DATA)/dataset.json
	$(BIN)/edge-rcnn train $(DATA) --out $(RUN)
	$(BIN)/edge-rcnn quantize $(RUN)/model.keras --calib $(DATA) --samples 128 --format tflite,onnx --mode int8 --streaming --min-top1 90 -o $(OUT)
	$(BIN)/edge-rcnn predict $(OUT)/model_int8.tflite $$(ls -d $(DATA)/val/*/* | head -1) --topk 3

$(DATA)/dataset.json: | $(STAMP)
	$(BIN)/edge-rcnn data translate $(DATA) --clips-per-class 256

# The layer contracts first (import-linter, seconds: see [tool.importlinter] in pyproject.toml),
# then the whole suite.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# The inner loop while editing: the layer contracts, then every test not marked `slow` (training
# runs, kill tests, soaks, the hostile-file battery, per-backbone conversions stay in `make test`).
# Every layer is still covered: config and model building, data, a conversion and verify round
# trip on the tiny model, runtimes' predict and stream, the CLI's error paths.
test-fast: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow"

# The device tests (tests/device) on an emulated Raspberry Pi 4 and 5 (ARM64 under qemu, no
# TensorFlow there), compared with this machine's outputs; see scripts/pi/run.sh.
test-pi: $(STAMP)
	EDGE_RCNN_HOST_PYTHON=$(BIN)/python bash scripts/pi/run.sh

bench: $(STAMP)
	$(BIN)/python benchmarks/standard.py

clean:
	rm -rf $(VENV) data runs out bench
