// Command max-gap is an example filter between ktstr-dispatch and
// ktstr-verdict, on the msgpack form of the record stream
// (ktstr-records(5)). It fails a run whose worst scheduling gap is above
// a limit: for each CRC-valid TEST entry whose stats say a worker waited
// longer than LIMIT milliseconds off-CPU (worst_gap_ms, or a cgroup's
// max_gap_ms), it adds a Fail outcome of kind "stuck" to the result.
//
//	ktstr-dispatch < run.frames | max-gap 40 | ktstr-verdict
//
// Build it with: go build -o bin/ ./scripts/filters/max-gap
//
// Every record passes through in order; only the payload of a TEST entry
// over the limit changes. The filter reads each record, and adds to the
// result, as generic msgpack maps, so it keeps keys it does not know; it
// needs only msgpack and the public payload package: copy it, change the
// check, and you have your own filter. It flushes its output whenever
// its input has nothing more buffered, so it streams.
//
// Exit status: 0 done, 1 malformed input or a write error, 2 usage.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

const tagTest = "TEST"

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
	br := bufio.NewReaderSize(in, 64<<10)
	if c, err := br.Peek(1); err == nil && c[0] == '{' {
		return errors.New("reads msgpack records (run ktstr-dispatch without --json)")
	}
	dec := msgpack.NewDecoder(br)
	bw := bufio.NewWriterSize(out, 64<<10)
	enc := msgpack.NewEncoder(bw)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	for n := 0; ; n++ {
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if _, err := br.Peek(1); err == io.EOF {
			return bw.Flush() // a clean end: between records
		}
		v, err := dec.DecodeInterface()
		if err != nil { // io.EOF here is a record cut short
			return fmt.Errorf("record %d: %v", n, err)
		}
		rec, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("record %d: a %T, want a map", n, v)
		}
		if err := check(rec, limit); err != nil {
			return fmt.Errorf("record %d: %v", n, err)
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
}

// check adds the Fail outcome to rec's TEST payload if a gap is over limit.
func check(rec map[string]any, limit float64) error {
	if rec["kind"] != "entry" || rec["tag"] != tagTest || rec["crc_ok"] != true {
		return nil
	}
	p, ok := rec["payload"].([]byte)
	if !ok {
		return nil // not a result this filter can read; the verdict will say so
	}
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
	// build of the payload package does not know survive.
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
	rec["payload"] = b.Bytes()
	return nil
}
