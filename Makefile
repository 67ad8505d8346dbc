# Two commands on a fresh machine:  `make demo` (the main job end to end)  and  `make test`.
# Both create the virtual environment on first use (and refresh it when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.edge-rcnn-installed
DATA   ?= data/moving-digits
RUN    ?= runs/demo
OUT    ?= out/demo

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	touch $(STAMP)

venv: $(STAMP)

# Generate the built-in dataset, train the default model, quantize to int8 TFLite and ONNX
# (verified against the float model), and predict a held-out clip with the exported file.
# Rerunning it reuses the dataset and resumes (or just reloads) the finished training run.
demo: $(STAMP) $(DATA)/dataset.json
	$(BIN)/edge-rcnn train $(DATA) --out $(RUN)
	$(BIN)/edge-rcnn quantize $(RUN)/model.keras --calib $(DATA) --samples 128 --format tflite,onnx --mode int8 --streaming -o $(OUT)
	$(BIN)/edge-rcnn predict $(OUT)/model_int8.tflite $$(ls -d $(DATA)/val/*/* | head -1) --topk 3

$(DATA)/dataset.json: | $(STAMP)
	$(BIN)/edge-rcnn data moving-digits $(DATA)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/standard.py

clean:
	rm -rf $(VENV) data runs out bench
