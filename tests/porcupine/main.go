// porcupine-check: checks client histories of the Raft key-value service for
// linearizability with Porcupine (github.com/anishathalye/porcupine), a checker
// written independently of ours (tests/src/linearizability.rs).
//
// Usage: porcupine-check [-timeout 60s] [-verdicts FILE] DIR|FILE...
//
// Each *.json file is one history in the format raft-tests-history/1
// (tests/src/history_export.rs documents it). Prints one line per file,
//
//	<file>: linearizable|violation|unknown (<n> operations, <p> never returned, <ms> ms)
//
// then a summary. -verdicts writes the same as JSON. Exit status: 0 every history
// is linearizable; 1 some history is not, or its check hit the time limit
// (unknown); 2 bad usage or an unreadable or malformed file.
//
// The model is the service's own semantics, one key per partition (linearizability
// is local): put, delete and a successful cas return the previous value, get the
// current one, a cas whose expected value differs returns cas-mismatch with the
// current value and changes nothing; null stands for an absent key. An operation
// that never returned (the client gave up: its outcome is unknown) gets
// Return = math.MaxInt64 and an output the model accepts in any state while still
// applying the operation's effect, as 6.5840's kvraft tests model a timed-out
// write: it may take effect anywhere after its call, or, linearized after
// everything observed, in effect never.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The version go.mod requires (go.sum pins it; see README.md).
const porcupineVersion = "v1.3.0"

type jsonOutput struct {
	Kind    string  `json:"kind"`
	Value   *string `json:"value"`
	Current *string `json:"current"`
	LastSeq *uint64 `json:"last_seq"`
}

type jsonOp struct {
	Id       int         `json:"id"`
	Client   int         `json:"client"`
	Kind     string      `json:"kind"`
	Key      *string     `json:"key"`
	Value    *string     `json:"value"`
	Expected *string     `json:"expected"`
	New      *string     `json:"new"`
	Call     *int64      `json:"call"`
	Return   *int64      `json:"return"`
	Output   *jsonOutput `json:"output"`
}

type jsonHistory struct {
	Format     string   `json:"format"`
	Name       string   `json:"name"`
	Operations []jsonOp `json:"operations"`
}

// An optional string: absent key / null.
type value struct {
	Present bool
	Value   string
}

func opt(s *string) value {
	if s == nil {
		return value{}
	}
	return value{true, *s}
}

func (v value) String() string {
	if !v.Present {
		return "nil"
	}
	return fmt.Sprintf("%q", v.Value)
}

type kvInput struct {
	Kind     string // put, get, delete, cas
	Key      string
	Value    value // put: the value; cas: the new value
	Expected value // cas
}

type kvOutput struct {
	Unknown bool   // never returned
	Kind    string // value, cas-mismatch, stale-request
	Value   value  // value: the value; cas-mismatch: the current value
	LastSeq uint64 // stale-request
}

// Per-key state: the key's value.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return value{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st := state.(value)
		in := input.(kvInput)
		out := output.(kvOutput)
		var next value
		var want kvOutput
		switch in.Kind {
		case "put":
			next, want = in.Value, kvOutput{Kind: "value", Value: st}
		case "get":
			next, want = st, kvOutput{Kind: "value", Value: st}
		case "delete":
			next, want = value{}, kvOutput{Kind: "value", Value: st}
		case "cas":
			if st == in.Expected {
				next, want = in.Value, kvOutput{Kind: "value", Value: st}
			} else {
				next, want = st, kvOutput{Kind: "cas-mismatch", Value: st}
			}
		default:
			return false, st
		}
		if out.Unknown {
			return true, next
		}
		return out == want, next
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(kvInput)
		out := output.(kvOutput)
		res := "?"
		if !out.Unknown {
			res = out.Kind + " " + out.Value.String()
		}
		switch in.Kind {
		case "put":
			return fmt.Sprintf("put(%q, %s) -> %s", in.Key, in.Value, res)
		case "cas":
			return fmt.Sprintf("cas(%q, %s, %s) -> %s", in.Key, in.Expected, in.Value, res)
		default:
			return fmt.Sprintf("%s(%q) -> %s", in.Kind, in.Key, res)
		}
	},
	DescribeState: func(state interface{}) string { return state.(value).String() },
}

// Reads one history file into Porcupine operations; also returns how many never returned.
func readHistory(path string) ([]porcupine.Operation, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var h jsonHistory
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, 0, err
	}
	if h.Format != "raft-tests-history/1" {
		return nil, 0, fmt.Errorf("not a raft-tests-history/1 file (format %q)", h.Format)
	}
	ops := make([]porcupine.Operation, 0, len(h.Operations))
	pending := 0
	for i, o := range h.Operations {
		if o.Key == nil || o.Call == nil {
			return nil, 0, fmt.Errorf("operation %d: missing key or call", i)
		}
		in := kvInput{Kind: o.Kind, Key: *o.Key}
		switch o.Kind {
		case "put":
			if o.Value == nil {
				return nil, 0, fmt.Errorf("operation %d: put without a value", i)
			}
			in.Value = opt(o.Value)
		case "cas":
			if o.New == nil {
				return nil, 0, fmt.Errorf("operation %d: cas without a new value", i)
			}
			in.Value, in.Expected = opt(o.New), opt(o.Expected)
		case "get", "delete":
		default:
			return nil, 0, fmt.Errorf("operation %d: unknown kind %q", i, o.Kind)
		}
		var out kvOutput
		ret := int64(math.MaxInt64)
		switch {
		case o.Return == nil && o.Output == nil:
			out.Unknown = true
			pending++
		case o.Return != nil && o.Output != nil:
			ret = *o.Return
			out.Kind = o.Output.Kind
			switch o.Output.Kind {
			case "value":
				out.Value = opt(o.Output.Value)
			case "cas-mismatch":
				out.Value = opt(o.Output.Current)
			case "stale-request":
				if o.Output.LastSeq != nil {
					out.LastSeq = *o.Output.LastSeq
				}
			default:
				return nil, 0, fmt.Errorf("operation %d: unknown output kind %q", i, o.Output.Kind)
			}
		default:
			return nil, 0, fmt.Errorf("operation %d: return and output must be both null or both set", i)
		}
		if ret < *o.Call {
			return nil, 0, fmt.Errorf("operation %d: returns before its call", i)
		}
		ops = append(ops, porcupine.Operation{
			ClientId: o.Client,
			Input:    in,
			Call:     *o.Call,
			Output:   out,
			Return:   ret,
		})
	}
	return ops, pending, nil
}

type verdict struct {
	File       string  `json:"file"`
	Verdict    string  `json:"verdict"`
	Operations int     `json:"operations"`
	Pending    int     `json:"pending"`
	Millis     float64 `json:"ms"`
}

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "time limit per history (then: unknown)")
	verdictsPath := flag.String("verdicts", "", "also write the verdicts as JSON to this file")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: porcupine-check [-timeout 60s] [-verdicts FILE] DIR|FILE...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var files []string
	for _, arg := range flag.Args() {
		st, err := os.Stat(arg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "porcupine-check: %v\n", err)
			os.Exit(2)
		}
		if !st.IsDir() {
			files = append(files, arg)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(arg, "*.json"))
		if err != nil {
			fmt.Fprintf(os.Stderr, "porcupine-check: %v\n", err)
			os.Exit(2)
		}
		sort.Strings(matches)
		files = append(files, matches...)
	}
	if len(files) == 0 {
		fmt.Fprintf(os.Stderr, "porcupine-check: no history files in %s\n", strings.Join(flag.Args(), " "))
		os.Exit(2)
	}
	start := time.Now()
	var results []verdict
	counts := map[string]int{}
	for _, f := range files {
		ops, pending, err := readHistory(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "porcupine-check: %s: %v\n", f, err)
			os.Exit(2)
		}
		t0 := time.Now()
		res := porcupine.CheckOperationsTimeout(kvModel, ops, *timeout)
		ms := float64(time.Since(t0).Microseconds()) / 1000
		v := map[porcupine.CheckResult]string{
			porcupine.Ok:      "linearizable",
			porcupine.Illegal: "violation",
			porcupine.Unknown: "unknown",
		}[res]
		counts[v]++
		fmt.Printf("%s: %s (%d operations, %d never returned, %.1f ms)\n", filepath.Base(f), v, len(ops), pending, ms)
		results = append(results, verdict{filepath.Base(f), v, len(ops), pending, ms})
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("porcupine %s: %d histories: %d linearizable, %d violation, %d unknown (%.2f s)\n",
		porcupineVersion, len(files), counts["linearizable"], counts["violation"], counts["unknown"], secs)
	if *verdictsPath != "" {
		data, _ := json.MarshalIndent(map[string]interface{}{
			"porcupine": porcupineVersion,
			"go":        runtime.Version(),
			"seconds":   secs,
			"results":   results,
		}, "", " ")
		if err := os.WriteFile(*verdictsPath, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "porcupine-check: %v\n", err)
			os.Exit(2)
		}
	}
	if counts["linearizable"] != len(files) {
		os.Exit(1)
	}
}
