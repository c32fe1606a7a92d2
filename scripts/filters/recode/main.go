// Command recode is an example filter on the record stream between
// ktstr-dispatch and ktstr-verdict (ktstr-records(5)): it rewrites the
// stream in the other form, msgpack as JSON lines and JSON lines as
// msgpack, or in the form -to names. A recording of the msgpack stream
// becomes something jq can read, and what jq wrote becomes what the
// tools write:
//
//	ktstr-dispatch < run.frames > run.rec
//	recode < run.rec | jq -c 'select(.kind == "diag")'
//	recode < run.rec | jq -c 'select(.tag != "DMSG")' | recode | ktstr-verdict
//
// Build it with: go build -o bin/ ./scripts/filters/recode
//
// Every record passes through in order, copied by the public package
// lib/record (record.Filter): each is checked on the way (a malformed record
// stops it with the record's index), and comes out with the keys of this
// schema version in the writer's order. It streams.
//
// Exit status: 0 done, 1 malformed input or a write error, 2 usage.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ktstr-go/ktstr/lib/record"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("recode", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	to := fs.String("to", "", "json or msgpack (default: the other form)")
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "recode: "+format+" (usage: recode [-to json|msgpack])\n", a...)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usage("%v", err)
	}
	if fs.NArg() != 0 {
		return usage("want no argument")
	}
	if *to != "" && *to != "json" && *to != "msgpack" {
		return usage("-to %q: want json or msgpack", *to)
	}
	if err := recode(stdin, stdout, *to); err != nil {
		fmt.Fprintf(stderr, "recode: %v\n", err)
		return 1
	}
	return 0
}

// recode copies the records of in to out in the form to ("" the other).
func recode(in io.Reader, out io.Writer, to string) error {
	form := func(inJSON bool) bool {
		if to == "" {
			return !inJSON
		}
		return to == "json"
	}
	return record.Filter{JSON: form}.Copy(out, in)
}
