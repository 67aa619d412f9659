// kvread: closed-loop linearizable-get load generator for etcd v3 (clientv3 from Debian's
// golang-etcd-server-dev), the etcd side of `OP=get bash impl/bench/kv-sbs.sh`.
//
// The same workload as `raft-kv bench --op get`: the keys bench-0 .. bench-999 are written once
// (values of -vsize bytes), then each of -c workers reads key bench-((i*7919 + w) % 1000) for
// its i-th get, one get in flight, until -d has elapsed after -w of warmup. etcd's Get is
// linearizable by default (its ReadIndex; WithSerializable would not be). Flags and the RESULT
// line are those of the harness's kvload, so run.py drives it through KVLOAD. With -cacert (and
// -cert -key for the members' --client-cert-auth) it speaks TLS (etcdtls.go, built in beside it):
// kv-sbs.sh with TLS=1 runs it through a wrapper that adds them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
)

const keys = 1000

func main() {
	eps := flag.String("endpoints", "127.0.0.1:23791", "comma-separated")
	conc := flag.Int("c", 1, "concurrent in-flight requests (workers)")
	conns := flag.Int("conns", 1, "number of gRPC client connections (workers round-robin over them)")
	dur := flag.Duration("d", 25*time.Second, "measured duration")
	warm := flag.Duration("w", 2*time.Second, "warmup (not measured)")
	vsize := flag.Int("vsize", 100, "value size bytes of the keys read")
	label := flag.String("label", "", "label for output")
	tf := registerTLSFlags()
	flag.Parse()
	tlsCfg, err := tf.config()
	if err != nil {
		fmt.Fprintf(os.Stderr, "kvread: %v\n", err)
		os.Exit(2)
	}
	endpointList, err := endpoints(*eps, tlsCfg != nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kvread: %v\n", err)
		os.Exit(2)
	}

	var clis []*clientv3.Client
	for i := 0; i < *conns; i++ {
		cli, err := clientv3.New(clientv3.Config{Endpoints: endpointList, DialTimeout: 5 * time.Second, TLS: tlsCfg})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		clis = append(clis, cli)
	}
	val := strings.Repeat("v", *vsize)
	for k := 0; k < keys; k++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := clis[0].Put(ctx, fmt.Sprintf("bench-%d", k), val)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "writing the keys to read: %v\n", err)
			os.Exit(1)
		}
	}
	start := time.Now()
	measStart := start.Add(*warm)
	end := measStart.Add(*dur)
	lats := make([][]time.Duration, *conc)
	errs := make([]int, *conc)
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cli := clis[w%len(clis)]
			l := make([]time.Duration, 0, 1<<16)
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				key := fmt.Sprintf("bench-%d", (i*7919+w)%keys)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := cli.Get(ctx, key)
				cancel()
				t1 := time.Now()
				if t0.Before(measStart) {
					continue
				}
				if err != nil || len(resp.Kvs) != 1 {
					errs[w]++
					continue
				}
				l = append(l, t1.Sub(t0))
			}
			lats[w] = l
		}(w)
	}
	wg.Wait()
	var all []time.Duration
	nerr := 0
	for w := range lats {
		all = append(all, lats[w]...)
		nerr += errs[w]
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := len(all)
	pct := func(p float64) float64 {
		if n == 0 {
			return 0
		}
		return float64(all[int(p*float64(n-1))].Microseconds()) / 1000.0
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	mean := 0.0
	if n > 0 {
		mean = float64(sum.Microseconds()) / 1000.0 / float64(n)
	}
	fmt.Printf("RESULT label=%s endpoints=%s c=%d conns=%d dur=%.1fs ops=%d errs=%d ops_per_s=%.1f mean_ms=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
		*label, *eps, *conc, *conns, dur.Seconds(), n, nerr, float64(n)/dur.Seconds(), mean, pct(0.50), pct(0.90), pct(0.99), pct(1.0))
	for _, c := range clis {
		c.Close()
	}
}
