#!/usr/bin/env bash
# Tunes the networks whose host logs ship in tuning_logs/host/<cpu>/ (issue 5):
# mobilefacenet and seesaw_share first (the benchmark's pair), then the models that
# reuse most of their kernels. Re-running continues where the logs stop: a kernel
# with --trials-per-kernel records is reused, not tuned again.
# Budgets used for the shipped logs (2-core box, ~1.5 h in all):
set -uo pipefail
cd "$(dirname "$0")/.."
HW=.venv/bin/hwface
export HWFACE_TUNING_LOGS="$PWD/tuning_logs"  # the shipped logs themselves (a user's tunes write to their data folder)
run() { echo "== $(date -u +%H:%M:%S) hwface tune $*"; $HW tune --target host --format json "$@" > "/tmp/hwface-tune-$2.json" || true; tail -c 300 "/tmp/hwface-tune-$2.json"; echo; }
run --model mobilefacenet  --trials 1536 --trials-per-kernel 64
run --model seesaw_share   --trials 1040 --trials-per-kernel 16
run --model seesaw_shuffle --trials 320  --trials-per-kernel 16
run --model frmbconv_7x7   --trials 480  --trials-per-kernel 8
run --model mbconv_7x7     --trials 480  --trials-per-kernel 8
# Session 3: seesaw_share's heaviest kernels, deeper. The first run measured on one
# runtime thread (before hwface set TVM_NUM_THREADS; stopped after its first round by a
# build that hung in LLVM), the second on two (docs/performance.md).
run --model seesaw_share   --trials 2560 --trials-per-kernel 192 --top-kernels 20
run --model seesaw_share   --trials 1280 --trials-per-kernel 400 --top-kernels 20
# Session 4: every seesaw_share kernel to 100 records on two threads, then hwface 0.3.0's
# phase-split strided convolutions (new workloads) in every shipped model.
run --model seesaw_share   --trials 3000 --trials-per-kernel 100 --top-kernels 65
run --model seesaw_share   --trials 960  --trials-per-kernel 192 --top-kernels 5
run --model mobilefacenet  --trials 960  --trials-per-kernel 192 --top-kernels 5
# (then the seesaw_shuffle, frmbconv_7x7 and mbconv_7x7 lines above were run again: with
# the older records reused, they tuned only the new strided kernels; on a fresh database
# the lines above already tune them)
# (the next one was stopped with Ctrl-C after 152 trials, once the new stride-2 depthwise
# kernel had its 100: what remained were concatenates and splits whose search space is spent)
run --model seesaw_share   --trials 800  --trials-per-kernel 100 --top-kernels 65
run --model mobilefacenet  --trials 800  --trials-per-kernel 64  --top-kernels 99
run --model seesaw_share   --trials 1000 --trials-per-kernel 320 --top-kernels 10
run --model seesaw_share   --trials 900  --trials-per-kernel 480 --top-kernels 14
# Session 5: the 20 heaviest seesaw_share kernels towards 640 records (1,600 trials, 21 min).
run --model seesaw_share   --trials 1600 --trials-per-kernel 640 --top-kernels 20
echo "== $(date -u +%H:%M:%S) done"
