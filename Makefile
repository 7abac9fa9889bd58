# hwface: every dependency is installed by this file and pyproject.toml, never by hand.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages: cross linkers for linux-arm64 (g++) and Android (clang + lld), user-mode QEMU + debootstrap for the
# emulated AArch64 device, OpenSSH server for the SSH bootstrap tests.
SYSDEPS := g++-aarch64-linux-gnu clang lld qemu-user-static debootstrap openssh-server binutils
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist): about half the suite waits on subprocesses, RPC servers and single-threaded
# LLVM builds, so two at once finish sooner on 2 cores; worksteal keeps the minute-long tunes at the end from
# running on one worker while the other idles. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist worksteal)

.PHONY: test test-fast test-zoo test-planner demo venv sysdeps clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

sysdeps:
	@missing=""; for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

test: venv sysdeps
	$(PY) -m pytest $(XDIST) $(PYTEST_ARGS)

# The quick loop: every test not marked slow (tuning, the emulated device, sshd, the zoo sweeps).
test-fast: venv sysdeps
	$(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

DEMO_DIR := artifacts/demo

# What a new user types. It writes artifacts/ (ignored) and the user's data folder, never the checkout: the last
# line checks that git status is what it was.
demo: venv sysdeps
	mkdir -p $(DEMO_DIR) && (git status --porcelain 2>/dev/null || true) > $(DEMO_DIR)/git-status-before
	$(VENV)/bin/hwface models
	$(VENV)/bin/hwface inspect seesaw_share
	$(VENV)/bin/hwface tune --target host --model seesaw_share --trials 64
	$(VENV)/bin/hwface compile --model seesaw_share --target host -o $(DEMO_DIR)/seesaw_share-host
	$(VENV)/bin/hwface compile --model seesaw_share --target linux-arm64 -o $(DEMO_DIR)/seesaw_share-linux-arm64
	TVM_NDK_CC= $(VENV)/bin/hwface compile --model seesaw_share --target android-arm64 -o $(DEMO_DIR)/seesaw_share-android-arm64  # clang + lld, no NDK
	$(VENV)/bin/hwface run $(DEMO_DIR)/seesaw_share-host --check
	$(VENV)/bin/hwface run $(DEMO_DIR)/seesaw_share-host --rpc --check
	$(VENV)/bin/hwface profile --target host --model seesaw_share
	$(VENV)/bin/hwface predict --target host --model seesaw_share --fingerprint 272a7f80  # the shipped data's device
	$(PY) benchmarks/serve_load.py --clients 1 --requests 4 --fingerprint 272a7f80  # starts the service, queries it, stops it
	(git status --porcelain 2>/dev/null || true) | diff $(DEMO_DIR)/git-status-before - && echo "make demo: the checkout is as it was"

clean:
	rm -rf $(VENV) build *.egg-info

# The kernel planner against the real pipeline on all 83 specs (zoo, 50 seeds, crafted): about 30 min on 2 cores.
test-planner: venv
	HWFACE_PLAN_AGREEMENT=all $(PY) -m pytest tests/nas/test_plan.py

# Every zoo network through compile-vs-PyTorch and the kernel-key checks (make test sweeps tests/zoo_sweep.py's subset).
test-zoo: venv sysdeps
	HWFACE_ZOO_SWEEP=all $(PY) -m pytest tests/compile/test_compile.py tests/latency/test_zoo_kernels.py
