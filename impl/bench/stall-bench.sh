#!/usr/bin/env bash
# Snapshot stalls under sustained puts: a fresh 3-node cluster (raft-cluster up, raft-node's
# default compaction policy), `raft-kv bench --duration DUR --clients C --keys distinct`, so the
# store (and each snapshot) grows with every put and snapshots are taken all along. The figure
# is the bench's maximum latency against its p99: a snapshot written on the event loop stalls
# every client for as long as the write and fsync take.
#
# Builds nothing. For each binaries directory given (default: $CARGO_TARGET_DIR/release), in the
# order given, RUNS runs; each run's bench line goes to OUT/bench.txt.
#
#   bash impl/bench/stall-bench.sh OUT [BIN_DIR...]
#
# Environment: DUR (20), CLIENTS (64), RUNS (1).
set -u -o pipefail
OUT=${1:?usage: stall-bench.sh OUT [BIN_DIR...]}
shift
BINS=("$@")
[ ${#BINS[@]} -eq 0 ] && BINS=("${CARGO_TARGET_DIR:-target}/release")
DUR=${DUR:-20}
CLIENTS=${CLIENTS:-64}
RUNS=${RUNS:-1}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "$(date -u +%FT%T) nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/bench.txt"
for run in $(seq 1 "$RUNS"); do
  for bin in "${BINS[@]}"; do
    dir=$(mktemp -d "$OUT/cluster.XXXX")
    "$bin/raft-cluster" up --nodes 3 --dir "$dir" > "$dir/cluster.out" 2>&1 &
    cpid=$!
    for _ in $(seq 1 100); do
      [ -f "$dir/cluster.toml" ] &&
        [ "$("$bin/raft-kv" --cluster "$dir/cluster.toml" --timeout-secs 2 put stall-probe 1 2>/dev/null)" = OK ] && break
      sleep 0.2
    done
    line=$("$bin/raft-kv" --cluster "$dir/cluster.toml" bench --duration "$DUR" --clients "$CLIENTS" --keys distinct 2>&1 | tail -1)
    snaps=$(ls "$dir"/*/snap-*.snap 2>/dev/null | wc -l)
    echo "run $run $bin: $line; snapshot files at the end: $snaps; load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/bench.txt"
    kill -TERM "$cpid"
    wait "$cpid" 2>/dev/null
    mkdir -p "$OUT/logs-$run-$(basename "$bin")" && cp "$dir"/node-*.log "$OUT/logs-$run-$(basename "$bin")/"
    du -sh "$dir" | tee -a "$OUT/bench.txt"
    rm -rf "$dir"
  done
done
