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
#   TLS=1 bash impl/bench/kv-sbs.sh                 # both systems over mutual TLS (see below)
#   TLS=1 SYSTEMS=etcd DUR=3 CS=8 bash impl/bench/kv-sbs.sh   # the etcd side alone, smoke run
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
# TLS=1: every connection of both systems is TLS, clients included, and clients present a
# certificate (unless CLIENT_CERTS=0, below). etcd: the script makes a CA and certificates with openssl (etcd-certs.sh: ECDSA
# P-256, a server/peer certificate per member with SAN IP:127.0.0.1 and DNS:localhost, one client
# certificate) in a directory under $SBS/tmp that lives as long as the script, and starts the
# members with https client and peer URLs and --client-cert-auth --trusted-ca-file --cert-file
# --key-file --peer-client-cert-auth --peer-trusted-ca-file --peer-cert-file --peer-key-file
# (start_etcd_members). The load comes from kvload-tls.go (puts) or kvread.go (gets), built here
# with etcdtls.go, through a wrapper that adds -cacert -cert -key (run.py passes fixed arguments).
# After each etcd run's load the script checks that the leader refuses a plain-TCP client and a
# TLS client without a certificate (the row's note says "TLS check: ..." when it does not).
# raft: the arguments that put raft-cluster and raft-kv on TLS come from raft_tls_args (below):
# mutual TLS between peers, and `raft-cluster up --client-cert-auth` for client certificates.
# CLIENT_CERTS=0 (TLS=1 only): on both sides the client port is TLS that authenticates the
# server alone (clients present no certificate); peers stay mutual TLS.
# Labels, log directories and the default OUT carry "-tls" ("-tls-nocert" with CLIENT_CERTS=0);
# meta.txt says tls= and client_certs=.
#
# Environment: MEMBERS (3 or 1), OP (put or get), TLS (0 or 1), CLIENT_CERTS (1 or 0), SYSTEMS
#   ("etcd raft": which systems run; the ABBA order keeps those named), DUR (25, integer seconds
#   measured), CS ("1 8 64"), WARM (2), STOP_GRACE (10), RAFT_BIN (target/release), HARNESS
#   (../shared/bench/etcd), SBS (work dir, ${TMPDIR:-/tmp}/etcd-sbs), OUT (results dir,
#   $SBS/results/<timestamp>-m<MEMBERS>-<OP>[-tls|-tls-nocert]).
# Output in $OUT: results.tsv (summarize.py's columns), table.md, raw.txt, json/<label>.json
# (each raft run's own report), fsync.txt, meta.txt, logs/<label>/.
set -u
ROOT=$PWD
HARNESS=${HARNESS:-$ROOT/../shared/bench/etcd}
SBS=${SBS:-${TMPDIR:-/tmp}/etcd-sbs}
MEMBERS=${MEMBERS:-3}
OP=${OP:-put}
TLS=${TLS:-0}
CLIENT_CERTS=${CLIENT_CERTS:-1}
SYSTEMS=${SYSTEMS:-"etcd raft"}
DUR=${DUR:-25}
CS=${CS:-"1 8 64"}
WARM=${WARM:-2}
STOP_GRACE=${STOP_GRACE:-10}
RAFT_BIN=${RAFT_BIN:-$ROOT/target/release}
KVLOAD=${KVLOAD:-$SBS/kvload}
TAG=""; [ "$TLS" = 1 ] && TAG=-tls; [ "$TLS$CLIENT_CERTS" = 10 ] && TAG=-tls-nocert
OUT=${OUT:-$SBS/results/$(date +%Y%m%d-%H%M%S)-m$MEMBERS-$OP$TAG}

case "$MEMBERS" in 1|3) ;; *) echo "kv-sbs.sh: MEMBERS must be 1 or 3, not '$MEMBERS'" >&2; exit 2 ;; esac
case "$OP" in put|get) ;; *) echo "kv-sbs.sh: OP must be put or get, not '$OP'" >&2; exit 2 ;; esac
case "$TLS" in 0|1) ;; *) echo "kv-sbs.sh: TLS must be 0 or 1, not '$TLS'" >&2; exit 2 ;; esac
case "$CLIENT_CERTS" in 0|1) ;; *) echo "kv-sbs.sh: CLIENT_CERTS must be 0 or 1, not '$CLIENT_CERTS'" >&2; exit 2 ;; esac
RUN_ETCD="" RUN_RAFT=""
for s in $SYSTEMS; do
  case "$s" in etcd) RUN_ETCD=1 ;; raft) RUN_RAFT=1 ;;
    *) echo "kv-sbs.sh: SYSTEMS names etcd and/or raft, not '$s'" >&2; exit 2 ;; esac
done
[ -n "$RUN_ETCD$RUN_RAFT" ] || { echo "kv-sbs.sh: SYSTEMS is empty" >&2; exit 2; }
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

# go_build NAME MAIN [FILE...]: the Go program NAME from impl/bench/MAIN (and the FILEs beside it)
# into $SBS/NAME, the way setup.sh builds kvload: Debian's Go in GOPATH mode over Debian's etcd
# client sources (setup.sh installed both; a newer Go earlier on PATH does not build them).
GO=${GO:-$(ls -d /usr/lib/go-1.*/bin/go 2>/dev/null | sort -V | tail -n 1)}
GO=${GO:-go}
go_build() {
  local name=$1 src=$SBS/gopath/src/$1 f; shift
  rm -rf "$src" && mkdir -p "$src" "$SBS/gocache" && cp "$ROOT/impl/bench/$1" "$src/main.go" || return 1
  shift
  for f in "$@"; do cp "$ROOT/impl/bench/$f" "$src/" || return 1; done
  (cd "$src" && GO111MODULE=off GOPATH="$SBS/gopath:/usr/share/gocode" GOCACHE="$SBS/gocache" \
     "$GO" build -o "$SBS/$name" "$name")
}
if [ -n "$RUN_ETCD" ] && [ "$OP" = get ]; then
  # kvread: the etcd side of gets (TLS too).
  go_build kvread kvread.go etcdtls.go || die "building kvread failed"
  KVLOAD=$SBS/kvread
elif [ -n "$RUN_ETCD" ] && [ "$TLS" = 1 ]; then
  # kvload-tls: the etcd side of puts over TLS (the harness's kvload has no TLS flags).
  go_build kvload-tls kvload-tls.go etcdtls.go || die "building kvload-tls failed"
  KVLOAD=$SBS/kvload-tls
fi
NEED=("$HARNESS/meter.py" "$HARNESS/summarize.py")
[ -n "$RUN_ETCD" ] && NEED+=("$KVLOAD" "$HARNESS/run.py" "$HARNESS/start-cluster.sh")
[ -n "$RUN_RAFT" ] && NEED+=("$RAFT_BIN/raft-cluster" "$RAFT_BIN/raft-node" "$RAFT_BIN/raft-kv")
for f in "${NEED[@]}"; do
  [ -e "$f" ] || die "missing $f"
done
if [ -n "$RUN_ETCD" ]; then
  command -v etcd >/dev/null && command -v etcdctl >/dev/null || die "etcd/etcdctl not installed"
fi

# ---------- raft side TLS ----------
# raft_tls_args PART DIR prints, one per line, the extra arguments that put one part of the raft
# side on the transport TLS says, with client certificates required on the client port when
# CLIENT_CERTS=1 (DIR is the cluster's directory, `raft-cluster up --dir DIR`):
#   up     `raft-cluster up`, after --nodes/--dir;
#   kv     every `raft-kv` call (the probe put and the bench), before the subcommand;
#   bench  `raft-kv bench`, after its own options.
# raft_transport_ok checks each started cluster's file against TLS, so a cluster on the other
# transport is never measured.
# TLS=1: up starts a TLS cluster by default (DIR/tls and the [tls] table; raft-kv takes ca.pem,
# client.pem and client.key from it); --client-cert-auth makes its client ports require client
# certificates, as etcd's --client-cert-auth; `raft-kv bench` speaks TLS with --io threads (one
# thread per client: its default --io poll is plain TCP only). TLS=0: up needs --insecure.
raft_tls_args() {
  case "$TLS:$1" in
    0:up) echo --insecure ;;
    0:kv|0:bench|1:kv) ;;
    1:up) if [ "$CLIENT_CERTS" = 1 ]; then echo --client-cert-auth; fi ;;
    1:bench) printf '%s\n' --io threads ;;
    *) echo "raft_tls_args: no part '$1'" >&2; return 1 ;;
  esac
}
# raft_transport_ok DIR: whether the cluster file DIR/cluster.toml is on the transport TLS says
# (a TLS cluster's file has a [tls] table; a plain one has none).
raft_transport_ok() {
  local has=0
  grep -q '^\[tls\]' "$1/cluster.toml" 2>/dev/null && has=1
  [ "$has" = "$TLS" ]
}
if [ -n "$RUN_RAFT" ]; then
  for part in up kv bench; do
    raft_tls_args "$part" /nonexistent > /dev/null \
      || die "TLS=$TLS: the raft side's '$part' arguments are not filled in yet (raft_tls_args in impl/bench/kv-sbs.sh); SYSTEMS=etcd runs the etcd side alone"
  done
fi

# ---------- etcd side TLS: certificates, the load generator's wrapper, etcdctl's flags ----------
ETCD_SCHEME="" ETCD_CERTS="" TLS_DIR="" ETCDCTL_TLS=()
if [ "$TLS" = 1 ] && [ -n "$RUN_ETCD" ]; then
  ETCD_SCHEME=https://
  TLS_DIR=$(mktemp -d "$SBS/tmp/tls.XXXX") || die "cannot make a directory under $SBS/tmp"
  ETCD_CERTS=$TLS_DIR/etcd
  msg=$(bash "$ROOT/impl/bench/etcd-certs.sh" "$ETCD_CERTS" "$MEMBERS" 2>&1) || die "etcd certificates: $msg"
  ETCDCTL_TLS=(--cacert "$ETCD_CERTS/ca.pem")
  [ "$CLIENT_CERTS" = 1 ] && ETCDCTL_TLS+=(--cert "$ETCD_CERTS/client.pem" --key "$ETCD_CERTS/client.key")
  # run.py runs $KVLOAD with fixed arguments: the wrapper adds the TLS flags (exec: the load
  # generator keeps the wrapper's PID, so run.py and meter.py account it as before).
  gen_tls=(-cacert "$ETCD_CERTS/ca.pem")
  [ "$CLIENT_CERTS" = 1 ] && gen_tls+=(-cert "$ETCD_CERTS/client.pem" -key "$ETCD_CERTS/client.key")
  { printf '#!/bin/bash\nexec'; printf ' %q' "$KVLOAD" "${gen_tls[@]}"; printf ' "$@"\n'; } \
    > "$TLS_DIR/kvload" && chmod +x "$TLS_DIR/kvload" || die "cannot write $TLS_DIR/kvload"
  KVLOAD=$TLS_DIR/kvload
fi

if [ "$MEMBERS" = 3 ]; then
  ETCD_EPS="${ETCD_SCHEME}127.0.0.1:23791,${ETCD_SCHEME}127.0.0.1:23792,${ETCD_SCHEME}127.0.0.1:23793"
  ETCD_PORTS="23791 23792 23793 23801 23802 23803"
else
  ETCD_EPS="${ETCD_SCHEME}127.0.0.1:23791"
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
# Log lines at warning level or above, minus the benign startup warnings: etcd's about simple
# tokens, and raft-node's that it runs without TLS (--insecure, which TLS=0 asks for once the
# nodes speak TLS).
count_warn() {
  sed 's/\x1b\[[0-9;]*m//g' "$@" 2>/dev/null \
    | grep -E ' [WEC] \| |(WARN|ERROR|PANIC):| WARN | ERROR |^raft-cluster: ' \
    | grep -vc -e 'simple token is not cryptographically signed' \
        -e 'WARN raft_node: --insecure: running without TLS' -e 'WARN raft_impl::node: no TLS (--insecure)'
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
finish() { cleanup; [ -n "$TLS_DIR" ] && rm -rf "$TLS_DIR"; }
trap 'log "interrupted"; finish; exit 130' INT TERM
trap 'finish' EXIT

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
  if [ "$MEMBERS" = 3 ] && [ "$TLS" = 0 ]; then
    ANCHOR_DIR=$dir bash "$HARNESS/start-cluster.sh" > "$dir/start.out" 2>&1
  else
    start_etcd_members "$dir"
  fi
}
# start_etcd_members DIR: the members started here, for what the harness's start-cluster.sh does
# not start (3 plain-TCP members only): 1 member, or TLS. The flags are start-cluster.sh's, with
# https URLs and, with TLS=1, the flags that make the peer port (and with CLIENT_CERTS=1 the
# client port) require a certificate signed by the run's CA (--peer-client-cert-auth,
# --client-cert-auth) and present the member's own.
start_etcd_members() {
  local dir=$1 i cluster="" scheme=http tls=()
  [ "$TLS" = 1 ] && scheme=https
  for ((i = 1; i <= MEMBERS; i++)); do cluster="$cluster${cluster:+,}n$i=$scheme://127.0.0.1:2380$i"; done
  mkdir -p "$dir/data" "$dir/logs" && : > "$dir/pids-3node.txt" || return 1
  for ((i = 1; i <= MEMBERS; i++)); do
    if [ "$TLS" = 1 ]; then
      tls=(--cert-file "$ETCD_CERTS/n$i.pem" --key-file "$ETCD_CERTS/n$i.key"
        --peer-client-cert-auth --peer-trusted-ca-file "$ETCD_CERTS/ca.pem"
        --peer-cert-file "$ETCD_CERTS/n$i.pem" --peer-key-file "$ETCD_CERTS/n$i.key")
      [ "$CLIENT_CERTS" = 1 ] && tls+=(--client-cert-auth --trusted-ca-file "$ETCD_CERTS/ca.pem")
    fi
    nohup etcd --name "n$i" --data-dir "$dir/data/n$i" \
      --listen-client-urls "$scheme://127.0.0.1:2379$i" --advertise-client-urls "$scheme://127.0.0.1:2379$i" \
      --listen-peer-urls "$scheme://127.0.0.1:2380$i" --initial-advertise-peer-urls "$scheme://127.0.0.1:2380$i" \
      --initial-cluster "$cluster" --initial-cluster-token "anchor$MEMBERS" --initial-cluster-state new \
      --quota-backend-bytes=8589934592 "${tls[@]}" > "$dir/logs/n$i.log" 2>&1 &
    echo "n$i $!" >> "$dir/pids-3node.txt"
  done
}
# tls_unenforced ENDPOINT: with TLS=1, what is wrong with the member at ENDPOINT's TLS: that it
# accepted a plain-TCP client or (CLIENT_CERTS=1) a TLS client without a certificate, or that it
# refused the proper client too (then the refusals prove nothing); nothing when all is right.
tls_unenforced() {
  local hp=${1#https://} bad=""
  local q=(--dial-timeout=1s --command-timeout=2s get kv-sbs-tls-probe)
  if ! etcdctl --endpoints="https://$hp" "${ETCDCTL_TLS[@]}" "${q[@]}" > /dev/null 2>&1; then
    echo "refused the client certificate too: refusals unchecked"; return
  fi
  etcdctl --endpoints="http://$hp" "${q[@]}" > /dev/null 2>&1 && bad="accepted plain TCP"
  [ "$CLIENT_CERTS" = 1 ] && etcdctl --endpoints="https://$hp" --cacert "$ETCD_CERTS/ca.pem" "${q[@]}" > /dev/null 2>&1 \
    && bad="$bad${bad:+, }accepted no client certificate"
  echo "$bad"
}

run_etcd() { # C RUN
  local c=$1 r=$2 label="etcd-m$MEMBERS-$OP$TAG-c$1-r$2" conns=$(($1 < 8 ? $1 : 8)) t busy lpid=""
  for ((t = 0; t < 30; t++)); do busy=$(ports_busy); [ -z "$busy" ] && break; sleep 1; done
  if [ -n "$busy" ]; then log "$label: etcd ports busy ($busy); skipped"; row etcd "$c" "$r" - - - - - - - - - - - "ports busy"; return; fi
  local dir; dir=$(mktemp -d "$SBS/tmp/$label.XXXX")
  CUR_KIND=etcd CUR_DIR=$dir
  start_etcd "$dir" || log "$label: etcd start failed: $(cat "$dir/start.out" 2>/dev/null)"
  CUR_PIDS=$(awk '{print $2}' "$dir/pids-3node.txt" 2>/dev/null | xargs)
  log "$label: started etcd pids $CUR_PIDS in $dir"
  local leader="" st
  for ((t = 0; t < 60; t++)); do
    st=$(etcdctl --endpoints="$ETCD_EPS" "${ETCDCTL_TLS[@]}" --dial-timeout=1s --command-timeout=2s endpoint status -w json 2>/dev/null)
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
    # After the warnings are counted: the refused probes leave warnings in the members' logs.
    if [ "$TLS" = 1 ]; then
      local unenf; unenf=$(tls_unenforced "$leader")
      [ -n "$unenf" ] && { note="$note TLS check: $unenf"; log "$label: TLS check: $unenf"; }
    fi
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
  local c=$1 r=$2 label="raft-m$MEMBERS-$OP$TAG-c$1-r$2" t
  local dir; dir=$(mktemp -d "$SBS/tmp/$label.XXXX")
  local up_args kv_args bench_args
  mapfile -t up_args < <(raft_tls_args up "$dir/c")
  mapfile -t kv_args < <(raft_tls_args kv "$dir/c")
  mapfile -t bench_args < <(raft_tls_args bench "$dir/c")
  local kv=("$RAFT_BIN/raft-kv" --cluster "$dir/c/cluster.toml" "${kv_args[@]}")
  CUR_KIND=raft CUR_DIR=$dir
  "$RAFT_BIN/raft-cluster" up --nodes "$MEMBERS" --dir "$dir/c" "${up_args[@]}" > "$dir/cluster.out" 2>&1 &
  CUR_CPID=$!
  for ((t = 0; t < 100; t++)); do
    CUR_PIDS=$(cat /proc/$CUR_CPID/task/$CUR_CPID/children 2>/dev/null | xargs)
    [ "$(wc -w <<<"$CUR_PIDS")" -ge "$MEMBERS" ] && [ -s "$dir/c/cluster.toml" ] && break
    sleep 0.1
  done
  log "$label: raft-cluster pid $CUR_CPID, raft-node pids $CUR_PIDS in $dir"
  local ok=""
  for ((t = 0; t < 30; t++)); do
    [ "$("${kv[@]}" --timeout-secs 2 put sbs-probe 1 2>>"$dir/probe.err")" = OK ] && { ok=1; break; }
    sleep 0.5
  done
  local leader; leader=$(sed 's/\x1b\[[0-9;]*m//g' "$dir"/c/node-*.log 2>/dev/null | grep 'became leader' | sort | tail -1 | sed -n 's/.*id=\(n[0-9]*\).*/\1/p')
  if [ -z "$ok" ] || [ "$(wc -w <<<"$CUR_PIDS")" -lt "$MEMBERS" ]; then
    log "$label: no leader / nodes missing ($CUR_PIDS): $(tail -3 "$dir/cluster.out" "$dir/probe.err" 2>/dev/null)"
    row raft "$c" "$r" - - - - - - - - - - - "no leader"
  elif ! raft_transport_ok "$dir/c"; then
    log "$label: the cluster file's transport is not TLS=$TLS (see raft_tls_args); not measured"
    row raft "$c" "$r" - - - - - - - - - - - "transport is not TLS=$TLS"
  else
    local json="$OUT/json/$label.json" out met vals note="" w
    log "$label: leader $leader; bench --clients $c --warmup $WARM --duration $DUR"
    out=$(python3 "$HARNESS/meter.py" $CUR_PIDS -- timeout $((DUR + WARM + 60)) \
            "${kv[@]}" bench --op "$OP" --clients "$c" --warmup "$WARM" --duration "$DUR" \
            --server-pids "$(tr ' ' ',' <<<"$CUR_PIDS")" --json "$json" "${bench_args[@]}" 2>&1)
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
  echo "members=$MEMBERS op=$OP tls=$TLS client_certs=$CLIENT_CERTS systems=${SYSTEMS// /,} dur=$DUR cs=$CS warm=$WARM"
  echo "raft_commit=$(git -C "$ROOT" log -1 --format=%h 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- model impl 2>/dev/null || echo -dirty)"
  echo "etcd=$(etcd --version | head -1 | awk '{print $3}')"
  echo "cores=$(nproc) start=$(date -u +%FT%TZ) loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)"
} > "$OUT/meta.txt"
log "kv-sbs: MEMBERS=$MEMBERS OP=$OP TLS=$TLS CLIENT_CERTS=$CLIENT_CERTS SYSTEMS=\"$SYSTEMS\" DUR=$DUR CS=\"$CS\" WARM=$WARM OUT=$OUT; $(nproc) cores; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
fsync_probe before
for c in $CS; do
  [ -n "$RUN_ETCD" ] && run_etcd "$c" 1
  [ -n "$RUN_RAFT" ] && run_raft "$c" 1
  [ -n "$RUN_RAFT" ] && run_raft "$c" 2
  [ -n "$RUN_ETCD" ] && run_etcd "$c" 2
done
fsync_probe after
echo "end=$(date -u +%FT%TZ) loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)" >> "$OUT/meta.txt"
python3 "$HARNESS/summarize.py" "$RES" > "$OUT/table.md"
log "done; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$OUT/table.md"
echo "$OUT"
