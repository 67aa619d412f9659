#!/usr/bin/env python3
"""kv-report.py OUT... [--json FILE]: one JSON report (and a markdown summary on stdout) from the
results directories of one or more impl/bench/kv-sbs.sh runs (for example the 3-member run and the
1-member run of one sitting). Every ratio is between rows of the same directory, that is of the
same run: figures of different runs are never divided by each other.
"""
import json
import os
import statistics
import sys

COLS = ['system', 'c', 'run', 'ops_s', 'p50', 'p99', 'server_cores', 'secs', 'ops',
        'client_cores', 'other_cores', 'irq_cores', 'logwarn', 'leader', 'note']


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def load(out):
    meta = {}
    with open(os.path.join(out, 'meta.txt')) as f:
        for tok in f.read().split():
            if '=' in tok:
                k, v = tok.split('=', 1)
                meta[k] = v
    rows = []
    with open(os.path.join(out, 'results.tsv')) as f:
        for line in f:
            if line.strip():
                v = line.rstrip('\n').split('\t')
                r = dict(zip(COLS, v + [''] * (len(COLS) - len(v))))
                rows.append({k: (num(x) if num(x) is not None and k not in ('system', 'leader', 'note') else x)
                             for k, x in r.items()})
    fsync = []
    path = os.path.join(out, 'fsync.txt')
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                d = dict(t.split('=', 1) for t in line.split()[1:])
                fsync.append({'when': d['when'], 'per_s': num(d['per_s']), 'p50_ms': num(d['p50_ms']),
                              'p99_ms': num(d['p99_ms'])})
    reports = {}
    jdir = os.path.join(out, 'json')
    for name in sorted(os.listdir(jdir)) if os.path.isdir(jdir) else []:
        with open(os.path.join(jdir, name)) as f:
            reports[name[:-5]] = json.load(f)
    return meta, rows, fsync, reports


def summary(members, op, tls, client_certs, rows):
    out = []
    for c in sorted({r['c'] for r in rows}):
        def vals(system, key):
            return [r[key] for r in rows if r['system'] == system and r['c'] == c and isinstance(r[key], float)]

        def eff(system):
            return [r['ops_s'] / r['server_cores'] for r in rows if r['system'] == system and r['c'] == c
                    and isinstance(r['ops_s'], float) and isinstance(r['server_cores'], float) and r['server_cores']]
        e, r = vals('etcd', 'ops_s'), vals('raft', 'ops_s')
        ee, re = eff('etcd'), eff('raft')
        med = lambda v: statistics.median(v) if v else None
        ratio = lambda a, b: a / b if a is not None and b else None
        s = {'members': members, 'op': op, 'tls': tls, 'client_certs': client_certs, 'clients': int(c), 'etcd_ops_s': med(e), 'raft_ops_s': med(r),
             'ratio': ratio(med(r), med(e)), 'etcd_p99_ms': vals('etcd', 'p99'), 'raft_p99_ms': vals('raft', 'p99'),
             'etcd_ops_per_server_cpu_s': med(ee), 'raft_ops_per_server_cpu_s': med(re),
             'cpu_ratio': ratio(med(re), med(ee)), 'runs': {'etcd': len(e), 'raft': len(r)}}
        if s['etcd_p99_ms'] and s['raft_p99_ms']:
            s['worst_p99_ratio'] = max(s['raft_p99_ms']) / max(s['etcd_p99_ms'])
        out.append(s)
    return out


def main():
    args = sys.argv[1:]
    dest = None
    if '--json' in args:
        i = args.index('--json')
        dest = args[i + 1]
        del args[i:i + 2]
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    doc = {'harness': 'impl/bench/kv-sbs.sh over ../shared/bench/etcd (kvload, run.py, meter.py)',
           'results_dirs': [], 'meta': [], 'fsync_probe': [], 'summary': [], 'runs': [], 'raft_reports': {}}
    for out in args:
        meta, rows, fsync, reports = load(out)
        m = int(meta.get('members', 3))
        op = meta.get('op', 'put')
        # TLS=1 runs (kv-sbs.sh): both systems over mutual TLS; directories from before the knob
        # have no tls key and ran on plain TCP.
        tls = meta.get('tls', '0') == '1'
        client_certs = tls and meta.get('client_certs', '1') == '1'
        doc['results_dirs'].append(out)
        doc['meta'].append(meta)
        doc['fsync_probe'] += [dict(f, members=m) for f in fsync]
        doc['summary'] += summary(m, op, tls, client_certs, rows)
        doc['runs'] += [dict(r, members=m, op=op, tls=tls, client_certs=client_certs) for r in rows]
        doc['raft_reports'].update(reports)
    commits = sorted({m.get('raft_commit') for m in doc['meta']})
    doc['raft_commit'] = commits[0] if len(commits) == 1 else commits
    rates = [f['per_s'] for f in doc['fsync_probe'] if f['per_s']]
    doc['fsyncs_per_s'] = [min(rates), max(rates)] if rates else None
    if dest:
        with open(dest, 'w') as f:
            json.dump(doc, f, indent=1)
            f.write('\n')
    fmt = lambda x: '-' if x is None else f'{x:,.0f}'
    p99 = lambda v: '-' if not v else f'{min(v):.2f}–{max(v):.2f}'
    print('| operation | members | clients | etcd 3.4 ops/s (p99 ms) | raft-kv ops/s (p99 ms) | ratio '
          '| ops per server CPU-second, raft/etcd |')
    print('|---|---|---|---|---|---|---|')
    for s in doc['summary']:
        ratio = '-' if s['ratio'] is None else f"{s['ratio']:.2f}×"
        cpu = '-' if s['cpu_ratio'] is None else f"{s['cpu_ratio']:.2f}×"
        tls = '' if not s['tls'] else ' (TLS)' if s['client_certs'] else ' (TLS, no client certificates)'
        print(f"| {s['op']}{tls} | {s['members']} | {s['clients']} | {fmt(s['etcd_ops_s'])} ({p99(s['etcd_p99_ms'])}) "
              f"| {fmt(s['raft_ops_s'])} ({p99(s['raft_p99_ms'])}) | {ratio} | {cpu} |")
    for f in doc['fsync_probe']:
        print(f"fsync probe ({f['members']} members, {f['when']}): {f['per_s']:,.0f}/s, "
              f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms")


if __name__ == '__main__':
    main()
