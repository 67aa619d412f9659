#!/usr/bin/env bash
# Log compaction under a long write load: a fresh 3-node cluster (raft-cluster up, fsync on as
# always), PUTS puts by `raft-kv bench --ops` over a bounded key space (KEYS keys overwritten),
# in legs that stop at each checkpoint; per node, the resident memory (VmRSS sampled every
# second, VmHWM = the peak since the process started) and the data directory (du every few
# seconds, snapshot files and WAL segments counted) at each checkpoint and at the end. Then the
# cluster is stopped and restarted on the same directories, and the restart time is measured:
# from starting `raft-cluster up` until a linearizable get (ReadIndex) returns the value of the
# key written last, before the stop. The same figures are taken after the restart.
#
# Builds nothing: expects the release binaries (cargo build --release -p raft-impl --bins).
#
#   bash impl/bench/compaction-bench.sh [OUT]            # OUT default: a new /tmp/compaction-bench.*
#   SNAPSHOT_ENTRIES=1000 bash impl/bench/compaction-bench.sh OUT
#
# Environment: RAFT_BIN (the binaries' directory; default $CARGO_TARGET_DIR/release or
# target/release), CHECKPOINTS (cumulative puts, default "100000 500000 1000000"; the last is
# the run's total), CLIENTS (64), KEYS (10000), SNAPSHOT_ENTRIES / SNAPSHOT_BYTES (passed to
# raft-cluster up when set; raft-node's defaults otherwise: 10000 entries, 64 MiB),
# DU_EVERY (seconds between du samples, 5), SETTLE (seconds after the restart before its
# figures are taken, 5).
#
# Writes in OUT: run.log, samples.tsv (every second: t, puts leg, node, VmRSS kB; every
# DU_EVERY s also du bytes, snapshot and segment counts), checkpoints.tsv (one row per node per
# checkpoint, "restart" rows after the restart), restart.txt, node logs, summary.md.
set -u -o pipefail

OUT=${1:-$(mktemp -d /tmp/compaction-bench.XXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RAFT_BIN=${RAFT_BIN:-${CARGO_TARGET_DIR:-target}/release}
CHECKPOINTS=${CHECKPOINTS:-"100000 500000 1000000"}
CLIENTS=${CLIENTS:-64}
KEYS=${KEYS:-10000}
DU_EVERY=${DU_EVERY:-5}
SETTLE=${SETTLE:-5}
DIR=$OUT/cluster
KV="$RAFT_BIN/raft-kv --cluster $DIR/cluster.toml"

for b in raft-cluster raft-node raft-kv; do
  [ -x "$RAFT_BIN/$b" ] || { echo "no $RAFT_BIN/$b: build with cargo build --release -p raft-impl --bins" >&2; exit 2; }
done
[ -e "$DIR" ] && { echo "$DIR exists: give a new OUT" >&2; exit 2; }

log() { echo "$(date +%T) $*" | tee -a "$OUT/run.log"; }
SNAP_FLAGS=()
[ -n "${SNAPSHOT_ENTRIES:-}" ] && SNAP_FLAGS+=(--snapshot-entries "$SNAPSHOT_ENTRIES")
[ -n "${SNAPSHOT_BYTES:-}" ] && SNAP_FLAGS+=(--snapshot-bytes "$SNAPSHOT_BYTES")

CPID="" SAMPLER=""
declare -A PID_OF # node id -> pid

cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
  [ -n "$CPID" ] && stop_cluster
}
trap cleanup EXIT

# The cluster's node pids, by id (from each child's --id argument).
find_nodes() {
  local t p id
  for ((t = 0; t < 100; t++)); do
    PID_OF=()
    for p in $(cat /proc/$CPID/task/$CPID/children 2>/dev/null); do
      id=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | sed -n 's/.*--id \([0-9]*\).*/\1/p')
      [ -n "$id" ] && PID_OF[$id]=$p
    done
    [ "${#PID_OF[@]}" -ge 3 ] && return 0
    sleep 0.1
  done
  return 1
}

start_cluster() { # -> CPID, PID_OF
  "$RAFT_BIN/raft-cluster" up --nodes 3 --dir "$DIR" "${SNAP_FLAGS[@]}" >> "$OUT/cluster.out" 2>&1 &
  CPID=$!
  find_nodes || { log "nodes did not start: $(tail -3 "$OUT/cluster.out")"; exit 1; }
}

stop_cluster() { # raft-cluster stops its nodes on SIGTERM; wait for every process to be gone
  local t p
  kill -TERM "$CPID" 2>/dev/null
  for ((t = 0; t < 300; t++)); do
    local alive=""
    for p in "$CPID" "${PID_OF[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in "${PID_OF[@]}"; do kill -0 "$p" 2>/dev/null && { log "node pid $p still up after 30 s: SIGKILL"; kill -KILL "$p"; }; done
  wait "$CPID" 2>/dev/null
  CPID=""
}

status_kb() { awk -v f="$2:" '$1 == f {print $2}' /proc/$1/status 2>/dev/null; } # PID FIELD
disk() { # ID -> "apparent_bytes allocated_bytes snapshots segments"
  local d=$DIR/node-$1
  echo "$(du -sb "$d" 2>/dev/null | cut -f1) $(( $(du -sk "$d" 2>/dev/null | cut -f1) * 1024 ))" \
    "$(ls "$d" 2>/dev/null | grep -c '^snap-.*\.snap$')" "$(ls "$d" 2>/dev/null | grep -c '^wal-.*\.log$')"
}

sampler() { # LEG: every second VmRSS per node; every DU_EVERY s the disk too
  local leg=$1 n=0 id
  while :; do
    for id in 0 1 2; do
      local line="$(date +%s.%N | cut -c1-14)	$leg	$id	$(status_kb "${PID_OF[$id]}" VmRSS)"
      ((n % DU_EVERY == 0)) && line="$line	$(disk "$id" | tr ' ' '\t')"
      echo "$line" >> "$OUT/samples.tsv"
    done
    n=$((n + 1))
    sleep 1
  done
}

checkpoint() { # LABEL: one row per node
  local id
  for id in 0 1 2; do
    local p=${PID_OF[$id]}
    echo "$1	$id	$(status_kb "$p" VmRSS)	$(status_kb "$p" VmHWM)	$(disk "$id" | tr ' ' '\t')" >> "$OUT/checkpoints.tsv"
  done
}

echo "t	leg	node	vmrss_kb	du_apparent_bytes	du_allocated_bytes	snapshots	segments" > "$OUT/samples.tsv"
echo "at	node	vmrss_kb	vmhwm_kb	du_apparent_bytes	du_allocated_bytes	snapshots	segments" > "$OUT/checkpoints.tsv"
log "nproc $(nproc), load average at start: $(cut -d' ' -f1-3 /proc/loadavg); binaries $RAFT_BIN; commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- impl 2>/dev/null || echo ' (impl/ modified)')"
log "checkpoints $CHECKPOINTS, $CLIENTS clients, $KEYS keys, snapshot flags: ${SNAP_FLAGS[*]:-none (raft-node defaults)}"
start_cluster
log "raft-cluster pid $CPID, nodes ${PID_OF[*]} (ids 0 1 2)"
for ((t = 0; t < 60; t++)); do
  [ "$($KV --timeout-secs 2 put compaction-bench-probe 1 2>/dev/null)" = OK ] && break
  sleep 0.5
done

done_puts=0
checkpoint 0
for cp in $CHECKPOINTS; do
  leg=$((cp - done_puts))
  sampler "$cp" &
  SAMPLER=$!
  t0=$(date +%s.%N)
  log "leg to $cp puts: raft-kv bench --ops $leg --clients $CLIENTS --keys $KEYS"
  if ! $KV --timeout-secs 10 bench --ops "$leg" --clients "$CLIENTS" --keys "$KEYS" >> "$OUT/bench.out" 2>&1; then
    log "bench failed: $(tail -2 "$OUT/bench.out")"; exit 1
  fi
  log "  $(tail -1 "$OUT/bench.out") ($(echo "$(date +%s.%N) - $t0" | bc | cut -c1-6) s)"
  kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null; SAMPLER=""
  done_puts=$cp
  checkpoint "$cp"
done

LAST_VALUE="last-$(date +%s%N)"
[ "$($KV put compaction-bench-last "$LAST_VALUE")" = OK ] || { log "the last put failed"; exit 1; }
checkpoint "end"
log "stopping the cluster"
stop_cluster
checkpoint_disk_only() { local id; for id in 0 1 2; do echo "stopped	$id	-	-	$(disk "$id" | tr ' ' '\t')" >> "$OUT/checkpoints.tsv"; done; }
checkpoint_disk_only
for id in 0 1 2; do cp "$DIR/node-$id.log" "$OUT/node-$id.before-restart.log"; done

# Restart: from `raft-cluster up` on the same directories until the key written last reads
# back (raft-kv get is linearizable: ReadIndex on the leader). cluster.toml is rewritten with
# new ports, so the get waits for the new file.
inode=$(stat -c %i "$DIR/cluster.toml")
t0=$(date +%s.%N)
start_cluster
tries=0
while :; do
  if [ "$(stat -c %i "$DIR/cluster.toml" 2>/dev/null)" != "$inode" ]; then
    tries=$((tries + 1))
    [ "$($KV --timeout-secs 1 get compaction-bench-last 2>/dev/null)" = "$LAST_VALUE" ] && break
  fi
  (( $(echo "$(date +%s.%N) - $t0 > 120" | bc) )) && { log "no read of the last key within 120 s"; exit 1; }
  sleep 0.01
done
t1=$(date +%s.%N)
restart=$(echo "$t1 - $t0" | bc)
log "restart: the last key read back $(printf %.3f "$restart") s after raft-cluster up ($tries get attempts)"
{ echo "restart_seconds $restart"; echo "raft-cluster up at $(date -u -d "@$t0" +%FT%T.%6NZ) (the nodes' log lines below: when each had recovered, and the leader)"; } > "$OUT/restart.txt"
sleep "$SETTLE"
checkpoint "restart+${SETTLE}s"
grep -h -E 'WAL recovered|node starting|became leader' "$DIR"/node-*.log | sed 's/\x1b\[[0-9;]*m//g' >> "$OUT/restart.txt"
stop_cluster
for id in 0 1 2; do cp "$DIR/node-$id.log" "$OUT/node-$id.after-restart.log"; done
log "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# summary.md: per checkpoint and node; the peak of the sampled VmRSS per leg as well.
python3 - "$OUT" > "$OUT/summary.md" <<'EOF'
import csv, sys, os
out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "checkpoints.tsv")), delimiter="\t"))
samples = list(csv.DictReader(open(os.path.join(out, "samples.tsv")), delimiter="\t"))
peak, dpeak = {}, {}
for s in samples:
    k = (s["leg"], s["node"])
    if s["vmrss_kb"]:
        peak[k] = max(peak.get(k, 0), int(s["vmrss_kb"]))
    if s.get("du_apparent_bytes"):
        dpeak[k] = max(dpeak.get(k, 0), int(s["du_apparent_bytes"]))
mib = lambda b: "-" if b in ("", "-", None) else f"{int(b) / 2**20:.1f}"
print("| at | node | VmRSS MiB | VmHWM MiB (peak so far) | sampled VmRSS peak in leg MiB | data dir MiB (apparent / allocated) | sampled data dir peak in leg MiB (apparent) | snapshots | WAL segments |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    kb = lambda v: "-" if v in ("", "-") else f"{int(v) / 1024:.1f}"
    p = peak.get((r["at"], r["node"]))
    print(f"| {r['at']} | {r['node']} | {kb(r['vmrss_kb'])} | {kb(r['vmhwm_kb'])} | "
          f"{'-' if p is None else f'{p / 1024:.1f}'} | {mib(r['du_apparent_bytes'])} / "
          f"{mib(r['du_allocated_bytes'])} | {mib(dpeak.get((r['at'], r['node']), '-'))} | "
          f"{r['snapshots']} | {r['segments']} |")
EOF
cat "$OUT/summary.md" "$OUT/restart.txt"
log "figures in $OUT"
