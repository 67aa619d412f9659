// kvload-tls: closed-loop put load generator for etcd v3 (clientv3 from Debian's
// golang-etcd-server-dev) that speaks TLS: the etcd side of `TLS=1 bash impl/bench/kv-sbs.sh`.
// The harness's kvload has no TLS flags and run.py calls it with fixed arguments, so kv-sbs.sh
// runs this program instead, through a wrapper that adds -cacert -cert -key (etcdtls.go).
//
// The workload is the harness's (so that its figures and these compare): -c workers, each with
// one Put in flight on a key of its own (PREFIX/LABEL/worker/sequence, never written twice), a
// value of -vsize bytes; the workers share -conns clients (gRPC connections) round-robin. A put
// that starts during the first -w is warmup and not counted; no worker starts a put after -w + -d;
// a put started in between is counted with its latency, or as an error. ops_per_s is the counted
// puts over -d. The RESULT line has the fields and format of kvload's, which run.py and
// kv-sbs.sh read; a run in which every counted put failed exits 1 after it, with the first error.
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

// worker is one closed-loop client: its counted latencies and errors.
type worker struct {
	lat      []time.Duration
	errs     int
	firstErr error
}

// loop puts until the window closes; puts started before measure are not recorded.
func (w *worker) loop(cli *clientv3.Client, keyPrefix, val string, measure, end time.Time) {
	w.lat = make([]time.Duration, 0, 1<<15)
	for seq := 0; ; seq++ {
		t0 := time.Now()
		if t0.After(end) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cli.Put(ctx, fmt.Sprintf("%s/%09d", keyPrefix, seq), val)
		cancel()
		d := time.Since(t0)
		if t0.Before(measure) {
			continue
		}
		if err != nil {
			if w.firstErr == nil {
				w.firstErr = err
			}
			w.errs++
			continue
		}
		w.lat = append(w.lat, d)
	}
}

// ms is a duration in milliseconds, at the microsecond resolution of kvload's report.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000.0 }

func main() {
	eps := flag.String("endpoints", "127.0.0.1:23791", "comma-separated; with TLS, host:port means https://host:port")
	clients := flag.Int("c", 1, "workers, each with one put in flight")
	conns := flag.Int("conns", 1, "gRPC client connections the workers share round-robin")
	dur := flag.Duration("d", 25*time.Second, "measured window")
	warm := flag.Duration("w", 2*time.Second, "warmup before the window (not counted)")
	vsize := flag.Int("vsize", 100, "value size in bytes")
	prefix := flag.String("prefix", "bench", "key prefix")
	label := flag.String("label", "", "label for the RESULT line and the keys")
	tf := registerTLSFlags()
	flag.Parse()
	fail := func(format string, a ...interface{}) {
		fmt.Fprintf(os.Stderr, "kvload-tls: "+format+"\n", a...)
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fail("unexpected argument %q", flag.Arg(0))
	}
	if *clients < 1 || *conns < 1 || *dur <= 0 || *warm < 0 || *vsize < 0 {
		fail("-c and -conns must be at least 1, -d positive, -w and -vsize not negative")
	}
	tlsCfg, err := tf.config()
	if err != nil {
		fail("%v", err)
	}
	endpointList, err := endpoints(*eps, tlsCfg != nil)
	if err != nil {
		fail("%v", err)
	}

	clis := make([]*clientv3.Client, *conns)
	for i := range clis {
		clis[i], err = clientv3.New(clientv3.Config{Endpoints: endpointList, DialTimeout: 5 * time.Second, TLS: tlsCfg})
		if err != nil {
			fmt.Fprintf(os.Stderr, "kvload-tls: connecting to %s: %v\n", *eps, err)
			os.Exit(1)
		}
	}
	val := strings.Repeat("v", *vsize)
	measure := time.Now().Add(*warm)
	end := measure.Add(*dur)
	workers := make([]worker, *clients)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			workers[i].loop(clis[i%len(clis)], fmt.Sprintf("%s/%s/%03d", *prefix, *label, i), val, measure, end)
		}(i)
	}
	wg.Wait()
	for _, c := range clis {
		c.Close()
	}

	var all []time.Duration
	errs := 0
	var firstErr error
	for i := range workers {
		all = append(all, workers[i].lat...)
		errs += workers[i].errs
		if firstErr == nil {
			firstErr = workers[i].firstErr
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	n := len(all)
	// The q-quantile as kvload takes it: the element at index q*(n-1), rounded down.
	q := func(p float64) float64 {
		if n == 0 {
			return 0
		}
		return ms(all[int(p*float64(n-1))])
	}
	var total time.Duration
	for _, d := range all {
		total += d
	}
	mean := 0.0
	if n > 0 {
		mean = ms(total) / float64(n)
	}
	fmt.Printf("RESULT label=%s endpoints=%s c=%d conns=%d dur=%.1fs ops=%d errs=%d ops_per_s=%.1f mean_ms=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
		*label, *eps, *clients, *conns, dur.Seconds(), n, errs, float64(n)/dur.Seconds(), mean, q(0.50), q(0.90), q(0.99), q(1.0))
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "kvload-tls: %d puts failed; the first: %v\n", errs, firstErr)
		if n == 0 {
			os.Exit(1)
		}
	}
}
