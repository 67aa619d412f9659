#!/bin/bash
# impl/bench/kv-sbs.sh: raft-kv against etcd 3.4, side by side, on this machine, 127.0.0.1 only.
#
# The project's own driver for the shared etcd harness (../shared/bench/etcd/: Debian's etcd-server,
# the Go load generator kvload, run.py, meter.py, summarize.py, start-cluster.sh). It differs from
# that directory's kv-sbs.sh in three ways: raft-kv is loaded by `raft-kv bench --warmup --duration`
# (the same 2 s warmup + DUR s window as kvload, not a fixed op count), a 1-member cluster of each
# system can be measured (MEMBERS=1), and the disk's fsync rate is probed before and after the run
# (the physical limit the figures are set against).
#
# Run from the project root after `cargo build --release -p raft-impl`:
#   bash impl/bench/kv-sbs.sh                       # 3 members, CS="1 8 64", DUR=25 (~9 min)
#   MEMBERS=1 CS=64 bash impl/bench/kv-sbs.sh       # 1 member, 64 clients (~3 min)
#   DUR=3 CS=8 bash impl/bench/kv-sbs.sh            # smoke run
#   OP=get bash impl/bench/kv-sbs.sh                # linearizable gets instead of puts
# With OP=get both sides write the keys bench-0 .. bench-999 (100-byte values) before the run and
# then read them, one get in flight per client: etcd through kvread.go beside this script (built
# here with the harness's Go setup; etcd's default, linearizable Get), raft-kv through
# `raft-kv bench --op get` (ReadIndex).
# then `python3 impl/bench/kv-report.py OUT...` writes results/kv-bench.json from one or more OUT dirs.
#
# For each c in $CS the order is etcd, raft, raft, etcd (two runs per system, ABBA). Every run
# starts a fresh cluster in a fresh data directory under $SBS/tmp, waits for a leader, loads it,
# accounts the server processes' CPU (meter.py), stops the cluster by PID and removes the data.
#
# Environment: MEMBERS (3 or 1), OP (put or get), DUR (25, integer seconds measured), CS ("1 8 64"), WARM (2),
#   STOP_GRACE (10), RAFT_BIN (target/release), HARNESS (../shared/bench/etcd), SBS (work dir,
#   ${TMPDIR:-/tmp}/etcd-sbs), OUT (results dir, $SBS/results/<timestamp>-m<MEMBERS>).
# Output in $OUT: results.tsv (summarize.py's columns), table.md, raw.txt, json/<label>.json
# (each raft run's own report), fsync.txt, meta.txt, logs/<label>/.
set -u
ROOT=$PWD
HARNESS=${HARNESS:-$ROOT/../shared/bench/etcd}
SBS=${SBS:-${TMPDIR:-/tmp}/etcd-sbs}
MEMBERS=${MEMBERS:-3}
OP=${OP:-put}
DUR=${DUR:-25}
CS=${CS:-"1 8 64"}
WARM=${WARM:-2}
STOP_GRACE=${STOP_GRACE:-10}
RAFT_BIN=${RAFT_BIN:-$ROOT/target/release}
KVLOAD=${KVLOAD:-$SBS/kvload}
OUT=${OUT:-$SBS/results/$(date +%Y%m%d-%H%M%S)-m$MEMBERS-$OP}

case "$MEMBERS" in 1|3) ;; *) echo "kv-sbs.sh: MEMBERS must be 1 or 3, not '$MEMBERS'" >&2; exit 2 ;; esac
case "$OP" in put|get) ;; *) echo "kv-sbs.sh: OP must be put or get, not '$OP'" >&2; exit 2 ;; esac
[[ "$DUR" =~ ^[1-9][0-9]*$ ]] || { echo "kv-sbs.sh: DUR must be a positive integer, not '$DUR'" >&2; exit 2; }
[[ "$WARM" =~ ^[0-9]+$ ]] || { echo "kv-sbs.sh: WARM must be a non-negative integer, not '$WARM'" >&2; exit 2; }

mkdir -p "$OUT/logs" "$OUT/json" "$SBS/tmp" || exit 1
RAW=$OUT/raw.txt
RES=$OUT/results.tsv
: > "$RES"

log() { echo "[$(date +%T)] $*" | tee -a "$RAW" >&2; }
die() { log "FATAL: $*"; exit 1; }

[ -d "$HARNESS" ] || die "no etcd harness at $HARNESS (set HARNESS)"
[ -x "$KVLOAD" ] || SBS=$SBS bash "$HARNESS/setup.sh" || die "$HARNESS/setup.sh failed"
if [ "$OP" = get ]; then
  # kvread (the etcd side of gets), built like the harness's kvload (setup.sh installed Go and
  # Debian's etcd client sources).
  mkdir -p "$SBS/gopath/src/kvread" "$SBS/gocache"
  cp "$ROOT/impl/bench/kvread.go" "$SBS/gopath/src/kvread/main.go"
  (cd "$SBS/gopath/src/kvread" && GO111MODULE=off GOPATH="$SBS/gopath:/usr/share/gocode" \
     GOCACHE="$SBS/gocache" go build -o "$SBS/kvread" kvread) || die "building kvread failed"
  KVLOAD=$SBS/kvread
fi
for f in "$KVLOAD" "$HARNESS/run.py" "$HARNESS/start-cluster.sh" "$HARNESS/meter.py" "$HARNESS/summarize.py" \
         "$RAFT_BIN/raft-cluster" "$RAFT_BIN/raft-node" "$RAFT_BIN/raft-kv"; do
  [ -e "$f" ] || die "missing $f"
done
command -v etcd >/dev/null && command -v etcdctl >/dev/null || die "etcd/etcdctl not installed"

if [ "$MEMBERS" = 3 ]; then
  ETCD_EPS="127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793"
  ETCD_PORTS="23791 23792 23793 23801 23802 23803"
else
  ETCD_EPS="127.0.0.1:23791"
  ETCD_PORTS="23791 23801"
fi

# ---------- process helpers: everything by PID, and a PID is only signalled while its command
# line still names our data dir, so a recycled PID is never touched ----------
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"; }
running() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
stop_pids() { # DIR SIGNAL PID...: signal, wait up to STOP_GRACE s, then SIGKILL what is left
  local dir=$1 sig=$2 p t left; shift 2
  for p in "$@"; do ours "$p" "$dir" && kill "-$sig" "$p" 2>/dev/null; done
  for ((t = 0; t < STOP_GRACE * 10; t++)); do
    left=0
    for p in "$@"; do running "$p" && left=1; done
    [ $left = 0 ] && return 0
    sleep 0.1
  done
  for p in "$@"; do
    if ours "$p" "$dir"; then log "  pid $p still running ${STOP_GRACE}s after SIG$sig: SIGKILL"; kill -KILL "$p" 2>/dev/null; fi
  done
  sleep 0.3
}
ports_busy() { local p busy=""; for p in $ETCD_PORTS; do ss -Hltn "sport = :$p" 2>/dev/null | grep -q . && busy="$busy $p"; done; echo $busy; }
# Log lines at warning level or above, minus etcd's benign startup warning about simple tokens.
count_warn() {
  sed 's/\x1b\[[0-9;]*m//g' "$@" 2>/dev/null \
    | grep -E ' [WEC] \| |(WARN|ERROR|PANIC):| WARN | ERROR |^raft-cluster: ' \
    | grep -vc 'simple token is not cryptographically signed'
}

CUR_KIND="" CUR_DIR="" CUR_PIDS="" CUR_CPID=""
cleanup() {
  case "$CUR_KIND" in
    etcd) stop_pids "$CUR_DIR" TERM $CUR_PIDS ;;
    raft) stop_pids "$CUR_DIR" TERM $CUR_CPID; stop_pids "$CUR_DIR" TERM $CUR_PIDS ;;
  esac
  [ -n "$CUR_DIR" ] && rm -rf "$CUR_DIR"
  CUR_KIND="" CUR_DIR="" CUR_PIDS="" CUR_CPID=""
}
trap 'log "interrupted"; cleanup; exit 130' INT TERM
trap 'cleanup' EXIT

# row SYSTEM C RUN OPS_S P50 P99 SERVER_CORES SECS OPS CLIENT_CORES OTHER_CORES IRQ_CORES LOGWARN LEADER NOTE
row() { local IFS=$'\t'; echo "$*" >> "$RES"; }
field() { sed -n "s/.*[ |]$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }

# fsync_probe WHEN: appends of 130 bytes, each followed by fdatasync, for 3 s, in $SBS/tmp (the
# file system the data directories live on).
fsync_probe() {
  python3 - "$SBS/tmp" "$1" <<'EOF' | tee -a "$OUT/fsync.txt" "$RAW" >&2
import os, sys, time
d, when = sys.argv[1], sys.argv[2]
path = os.path.join(d, 'fsync-probe.%d' % os.getpid())
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
lat, rec, t0 = [], b'x' * 130, time.perf_counter()
while time.perf_counter() - t0 < 3.0:
    a = time.perf_counter(); os.write(fd, rec); os.fdatasync(fd); lat.append(time.perf_counter() - a)
el = time.perf_counter() - t0
os.close(fd); os.unlink(path)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
print(f'FSYNC when={when} per_s={len(lat) / el:.0f} p50_ms={q(0.5):.3f} p99_ms={q(0.99):.3f} n={len(lat)} secs={el:.1f}')
EOF
}

# ---------- etcd ----------
start_etcd() { # DIR: MEMBERS members; writes DIR/pids-3node.txt ("nI PID" lines) like start-cluster.sh
  local dir=$1
  if [ "$MEMBERS" = 3 ]; then
    ANCHOR_DIR=$dir bash "$HARNESS/start-cluster.sh" > "$dir/start.out" 2>&1
  else
    mkdir -p "$dir/data" "$dir/logs"
    nohup etcd --name n1 --data-dir "$dir/data/n1" \
      --listen-client-urls http://127.0.0.1:23791 --advertise-client-urls http://127.0.0.1:23791 \
      --listen-peer-urls http://127.0.0.1:23801 --initial-advertise-peer-urls http://127.0.0.1:23801 \
      --initial-cluster n1=http://127.0.0.1:23801 --initial-cluster-token anchor1 --initial-cluster-state new \
      --quota-backend-bytes=8589934592 > "$dir/logs/n1.log" 2>&1 &
    echo "n1 $!" > "$dir/pids-3node.txt"
  fi
}

run_etcd() { # C RUN
  local c=$1 r=$2 label="etcd-m$MEMBERS-$OP-c$1-r$2" conns=$(($1 < 8 ? $1 : 8)) t busy lpid=""
  for ((t = 0; t < 30; t++)); do busy=$(ports_busy); [ -z "$busy" ] && break; sleep 1; done
  if [ -n "$busy" ]; then log "$label: etcd ports busy ($busy); skipped"; row etcd "$c" "$r" - - - - - - - - - - - "ports busy"; return; fi
  local dir; dir=$(mktemp -d "$SBS/tmp/$label.XXXX")
  CUR_KIND=etcd CUR_DIR=$dir
  start_etcd "$dir" || log "$label: etcd start failed: $(cat "$dir/start.out" 2>/dev/null)"
  CUR_PIDS=$(awk '{print $2}' "$dir/pids-3node.txt" 2>/dev/null | xargs)
  log "$label: started etcd pids $CUR_PIDS in $dir"
  local leader="" st
  for ((t = 0; t < 60; t++)); do
    st=$(etcdctl --endpoints="$ETCD_EPS" --dial-timeout=1s --command-timeout=2s endpoint status -w json 2>/dev/null)
    leader=$(python3 -c '
import json, sys
try: s = json.loads(sys.argv[1])
except Exception: sys.exit(0)
ls = {x["Status"]["leader"] for x in s}
if len(s) == int(sys.argv[2]) and len(ls) == 1 and 0 not in ls:
    print(next(x["Endpoint"] for x in s if x["Status"]["header"]["member_id"] == x["Status"]["leader"]))
' "$st" "$MEMBERS")
    [ -n "$leader" ] && break
    sleep 0.5
  done
  if [ -z "$leader" ]; then
    log "$label: no leader after 30 s"; row etcd "$c" "$r" - - - - - - - - - - - "no leader"
  else
    local n=${leader##*:}; n=n${n#2379}
    lpid=$(awk -v n="$n" '$1 == n {print $2}' "$dir/pids-3node.txt")
    log "$label: leader $leader ($n, pid $lpid); kvload -c $c -conns $conns -d ${DUR}s -w 2s"
    local out res met note="" errs w
    out=$(cd "$dir" && KVLOAD=$KVLOAD python3 "$HARNESS/meter.py" $CUR_PIDS -- \
            timeout $((DUR + 60)) python3 "$HARNESS/run.py" "$label" "$leader" "$c" "$conns" "${DUR}s" 2>&1)
    echo "$out" >> "$RAW"
    res=$(grep '^RESULT' <<<"$out"); met=$(grep '^METER' <<<"$out")
    [ -z "$res" ] && note="no RESULT line"
    errs=$(field errs "$res"); [ -n "$errs" ] && [ "$errs" != 0 ] && note="$note errs=$errs"
    [ "$(field lost "$met")" != "-" ] && note="$note server pid lost"
    w=$(count_warn "$dir"/logs/*.log)
    row etcd "$c" "$r" "$(field ops_per_s "$res")" "$(field p50_ms "$res")" "$(field p99_ms "$res")" \
        "$(field server_cores "$met")" "$DUR" "$(field ops "$res")" "$(field client_cores "$met")" \
        "$(field other_cores "$met")" "$(field irq_cores "$met")" "$w" "$n" "${note# }"
    log "$label: $(field ops_per_s "$res") ops/s p50 $(field p50_ms "$res") p99 $(field p99_ms "$res") ms, server $(field server_cores "$met") cores, other jobs $(field other_cores "$met")"
  fi
  # The leader first (it hands leadership over and exits at once), then the rest.
  local t0=$SECONDS
  [ -n "$lpid" ] && stop_pids "$dir" TERM $lpid
  stop_pids "$dir" TERM $CUR_PIDS
  log "$label: stopped in $((SECONDS - t0)) s"
  mkdir -p "$OUT/logs/$label" && cp "$dir"/logs/*.log "$OUT/logs/$label/" 2>/dev/null
  rm -rf "$dir"; CUR_KIND="" CUR_DIR="" CUR_PIDS=""
}

# ---------- raft ----------
run_raft() { # C RUN
  local c=$1 r=$2 label="raft-m$MEMBERS-$OP-c$1-r$2" t
  local dir; dir=$(mktemp -d "$SBS/tmp/$label.XXXX")
  local kv="$RAFT_BIN/raft-kv --cluster $dir/c/cluster.toml"
  CUR_KIND=raft CUR_DIR=$dir
  "$RAFT_BIN/raft-cluster" up --nodes "$MEMBERS" --dir "$dir/c" > "$dir/cluster.out" 2>&1 &
  CUR_CPID=$!
  for ((t = 0; t < 100; t++)); do
    CUR_PIDS=$(cat /proc/$CUR_CPID/task/$CUR_CPID/children 2>/dev/null | xargs)
    [ "$(wc -w <<<"$CUR_PIDS")" -ge "$MEMBERS" ] && [ -s "$dir/c/cluster.toml" ] && break
    sleep 0.1
  done
  log "$label: raft-cluster pid $CUR_CPID, raft-node pids $CUR_PIDS in $dir"
  local ok=""
  for ((t = 0; t < 30; t++)); do
    [ "$($kv --timeout-secs 2 put sbs-probe 1 2>>"$dir/probe.err")" = OK ] && { ok=1; break; }
    sleep 0.5
  done
  local leader; leader=$(sed 's/\x1b\[[0-9;]*m//g' "$dir"/c/node-*.log 2>/dev/null | grep 'became leader' | sort | tail -1 | sed -n 's/.*id=\(n[0-9]*\).*/\1/p')
  if [ -z "$ok" ] || [ "$(wc -w <<<"$CUR_PIDS")" -lt "$MEMBERS" ]; then
    log "$label: no leader / nodes missing ($CUR_PIDS): $(tail -3 "$dir/cluster.out" "$dir/probe.err" 2>/dev/null)"
    row raft "$c" "$r" - - - - - - - - - - - "no leader"
  else
    local json="$OUT/json/$label.json" out met vals note="" w
    log "$label: leader $leader; bench --clients $c --warmup $WARM --duration $DUR"
    out=$(python3 "$HARNESS/meter.py" $CUR_PIDS -- timeout $((DUR + WARM + 60)) \
            $kv bench --op "$OP" --clients "$c" --warmup "$WARM" --duration "$DUR" \
            --server-pids "$(tr ' ' ',' <<<"$CUR_PIDS")" --json "$json" 2>&1)
    echo "$label: $out" >> "$RAW"
    met=$(grep '^METER' <<<"$out")
    # ops/s, p50, p99, window seconds, ops and errors from the bench's own JSON report
    vals=$(python3 -c '
import json, sys
try: d = json.load(open(sys.argv[1]))
except Exception: print("- - - - - -"); sys.exit(0)
l = d["latency_ms"]
print(round(d["ops_per_sec"], 1), round(l["p50"], 3), round(l["p99"], 3), d["window_seconds"], d["ops"], sum(d["errors"].values()))
' "$json")
    read -r ops_s p50 p99 secs n errs <<<"$vals"
    [ "$ops_s" = - ] && note="bench failed (rc $(field rc "$met")): $(grep -v '^METER' <<<"$out" | tail -1)"
    [ "$errs" != - ] && [ "$errs" != 0 ] && note="$note errs=$errs"
    [ "$(field lost "$met")" != "-" ] && note="$note server pid lost"
    w=$(count_warn "$dir"/c/node-*.log "$dir/cluster.out")
    # Server cores as for etcd: meter.py over the whole load run (warmup included), so the
    # per-CPU-second ratio compares like with like; the JSON report also has the window-only CPU.
    local cores; cores=$(field server_cores "$met")
    row raft "$c" "$r" "$ops_s" "$p50" "$p99" "$cores" "$secs" "$n" "$(field client_cores "$met")" \
        "$(field other_cores "$met")" "$(field irq_cores "$met")" "$w" "$leader" "${note# }"
    log "$label: $ops_s ops/s p50 $p50 p99 $p99 ms over $secs s, server $cores cores, other jobs $(field other_cores "$met")"
  fi
  local t0=$SECONDS
  stop_pids "$dir" TERM $CUR_CPID
  stop_pids "$dir" TERM $CUR_PIDS
  wait "$CUR_CPID" 2>/dev/null
  log "$label: stopped in $((SECONDS - t0)) s"
  mkdir -p "$OUT/logs/$label" && cp "$dir"/c/node-*.log "$dir/cluster.out" "$OUT/logs/$label/" 2>/dev/null
  [ -s "$dir/probe.err" ] && cp "$dir/probe.err" "$OUT/logs/$label/"
  rm -rf "$dir"; CUR_KIND="" CUR_DIR="" CUR_PIDS="" CUR_CPID=""
}

{
  echo "members=$MEMBERS op=$OP dur=$DUR cs=$CS warm=$WARM"
  echo "raft_commit=$(git -C "$ROOT" log -1 --format=%h 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- model impl 2>/dev/null || echo -dirty)"
  echo "etcd=$(etcd --version | head -1 | awk '{print $3}')"
  echo "cores=$(nproc) start=$(date -u +%FT%TZ) loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
} > "$OUT/meta.txt"
log "kv-sbs: MEMBERS=$MEMBERS OP=$OP DUR=$DUR CS=\"$CS\" WARM=$WARM OUT=$OUT; $(nproc) cores; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
fsync_probe before
for c in $CS; do
  run_etcd "$c" 1
  run_raft "$c" 1
  run_raft "$c" 2
  run_etcd "$c" 2
done
fsync_probe after
echo "end=$(date -u +%FT%TZ) loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" >> "$OUT/meta.txt"
python3 "$HARNESS/summarize.py" "$RES" > "$OUT/table.md"
log "done; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$OUT/table.md"
echo "$OUT"
