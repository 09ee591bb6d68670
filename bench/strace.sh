#!/bin/bash
# strace.sh STRATEGY N MAX: runs N scale workers (2 ms hold, no think time)
# of STRATEGY (llmslots, reference, floor) on a fresh pool of MAX
# slots in /dev/shm for 2 s, one of them under `strace -f -c`, and prints
# the system calls that worker made per acquisition.
#   bash bench/strace.sh llmslots 8 4
set -euo pipefail
strat=${1:?strategy} n=${2:?workers} max=${3:?max}
bin=$(mktemp /tmp/llmslots-bench-XXXXXX)
(cd "$(dirname "$0")" && go build -o "$bin" .)
dir=$(mktemp -d /dev/shm/llmslots-strace-XXXXXX)
out=$(mktemp)
trap 'rm -rf "$dir" "$bin" "$out" "$out.ev"' EXIT
now=$(python3 -c 'import time; print(time.clock_gettime_ns(time.CLOCK_MONOTONIC))')
start=$((now + 500000000)) end=$((now + 2500000000))
export LLMSLOTS_BENCH_WORKER=cycle BENCH_STRATEGY=$strat BENCH_DIR=$dir BENCH_MAX=$max \
	BENCH_HOLD=2ms BENCH_THINK=0 BENCH_START=$start BENCH_END=$end
for _ in $(seq 2 "$n"); do "$bin" >/dev/null & done
strace -f -c -o "$out" "$bin" >"$out.ev"
wait
acq=$(grep -c '^ev ' "$out.ev")
echo "$acq acquisitions by the traced worker; system calls per acquisition:"
awk -v n="$acq" '$4 ~ /^[0-9]+$/ && $NF != "total" { printf "  %-20s %7.2f\n", $NF, $4 / n }' "$out"
