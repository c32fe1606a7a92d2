// Command max-gap is an example filter between ktstr-dispatch and
// ktstr-verdict, on the record stream (ktstr-records(5)) in either form.
// It fails a run whose worst scheduling gap is above a limit: for each
// CRC-valid TEST entry whose stats say a worker waited longer than LIMIT
// milliseconds off-CPU (worst_gap_ms, or a cgroup's max_gap_ms), it adds
// a Fail outcome of kind "stuck" to the result.
//
//	ktstr-dispatch < run.frames | max-gap 40 | ktstr-verdict
//
// Build it with: go build -o bin/ ./scripts/filters/max-gap
//
// Every record passes through in order, in the form it came in; only the
// payload of a TEST entry over the limit changes. The records are read
// and written with the public package lib/record, the code the tools
// use (record.Filter does the copying), so the filter is small: copy it,
// change check, and you have your own filter. A record keeps the keys of this schema version: keys a
// later version adds are dropped. The result is changed as a generic
// msgpack map, so that payload keys this build does not know survive. It
// flushes its output whenever its input has nothing more buffered, so it
// streams.
//
// Exit status: 0 done, 1 malformed input or a write error, 2 usage.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("max-gap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "max-gap: "+format+" (usage: max-gap LIMIT_MS)\n", a...)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usage("%v", err)
	}
	if fs.NArg() != 1 {
		return usage("want one argument")
	}
	limit, err := strconv.ParseFloat(fs.Arg(0), 64)
	if err != nil || limit < 0 || limit != limit {
		return usage("LIMIT_MS %q: want a number of milliseconds", fs.Arg(0))
	}
	if err := filter(stdin, stdout, limit); err != nil {
		fmt.Fprintf(stderr, "max-gap: %v\n", err)
		return 1
	}
	return 0
}

// filter copies records from in to out, failing TEST results over limit.
func filter(in io.Reader, out io.Writer, limit float64) error {
	keep := func(r *record.Record) (bool, error) { return true, check(r, limit) }
	return record.Filter{Keep: keep}.Copy(out, in)
}

// check adds the Fail outcome to r's TEST payload if a gap is over limit.
func check(r *record.Record, limit float64) error {
	if r.Kind != record.KindEntry || wire.Type(r.MsgType) != wire.TypeTestResult || !r.CRCOK {
		return nil
	}
	p := r.Payload
	res, err := payload.UnmarshalAssertResult(p)
	if err != nil {
		return nil // likewise
	}
	var fails []payload.Outcome
	if g := res.Stats.WorstGapMS; g > limit {
		fails = append(fails, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindStuck,
			Message: fmt.Sprintf("worst gap %.1fms exceeds the %gms limit (max-gap filter)", g, limit)})
	}
	for _, cg := range res.Stats.Cgroups {
		if cg.MaxGapMS > limit && cg.MaxGapMS != res.Stats.WorstGapMS {
			fails = append(fails, payload.Outcome{Verdict: payload.Fail, Kind: payload.KindStuck,
				Message: fmt.Sprintf("cgroup %s: gap %.1fms exceeds the %gms limit (max-gap filter)", cg.Name, cg.MaxGapMS, limit)})
		}
	}
	if len(fails) == 0 {
		return nil
	}
	// Add the outcomes to the payload as a generic map, so that keys this
	// build of the payload package does not know survive. The payload
	// decoded above within the payload package's bounds, so the library's
	// generic decoder cannot be made to allocate beyond them here.
	var pm map[string]any
	if err := msgpack.Unmarshal(p, &pm); err != nil {
		return err
	}
	outcomes, _ := pm["outcomes"].([]any)
	for _, f := range fails {
		outcomes = append(outcomes, map[string]any{"verdict": string(f.Verdict), "kind": f.Kind, "message": f.Message})
	}
	pm["outcomes"] = outcomes
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(pm); err != nil {
		return err
	}
	r.Payload = b.Bytes()
	return nil
}
