package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ktstr-go/ktstr/internal/clitest"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ktstr-verdict": func() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) },
		// mkrec [-json] SCENARIO FILE writes a hand-built record stream;
		// its console files (if any) go next to FILE.
		"mkrec": func() { os.Exit(mkrec(os.Args[1:])) },
	})
}

func mkrec(args []string) int {
	jsonLines := len(args) > 0 && args[0] == "-json"
	if jsonLines {
		args = args[1:]
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkrec [-json] SCENARIO FILE")
		return 2
	}
	sc, ok := vt.Scenarios()[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "mkrec: no scenario %q (have %s)\n", args[0], strings.Join(vt.Names(), " "))
		return 2
	}
	if err := os.WriteFile(args[1], sc.Stream.Bytes(jsonLines), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for name, text := range sc.Consoles {
		if err := os.WriteFile(filepath.Join(filepath.Dir(args[1]), name), []byte(text), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"status": clitest.Status, "closedstdout": clitest.ClosedStdout}})
}

// TestExitStatus pins the exit status of every verdict and every kind of
// usage error.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	for _, name := range vt.Names() {
		sc := vt.Scenarios()[name]
		if err := os.WriteFile(filepath.Join(dir, name+".rec"), sc.Stream.Bytes(false), 0o644); err != nil {
			t.Fatal(err)
		}
		for k, text := range sc.Consoles {
			if err := os.WriteFile(filepath.Join(dir, name+"."+k), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec := func(n string) string { return filepath.Join(dir, n+".rec") }
	tests := []struct {
		args  []string
		want  int
		usage bool
	}{
		{[]string{rec("pass")}, 0, false},
		{[]string{rec("skip")}, 0, false},
		{[]string{rec("assertion")}, 1, false},
		{[]string{rec("crash")}, 1, false},
		{[]string{rec("timeout")}, 1, false},
		{[]string{rec("sched_died")}, 1, false},
		{[]string{rec("no_result")}, 1, false},
		{[]string{rec("splat")}, 1, false},
		{[]string{"--splat-status", "inconclusive", rec("splat")}, 3, false},
		{[]string{"--no-splat", "warn", "--no-splat", "rcu_stall", rec("splat")}, 0, false},
		{[]string{rec("inconclusive")}, 3, false},
		{[]string{rec("infra")}, 4, false},
		{[]string{rec("lost_result")}, 4, false},
		{[]string{rec("console_panic")}, 1, false},
		{[]string{"--console", filepath.Join(dir, "console_panic.com2.log"), rec("console_panic")}, 1, false},
		{[]string{filepath.Join(dir, "missing.rec")}, 4, false},
		{[]string{"--format", "junit", rec("pass"), rec("skip")}, 0, false},
		{[]string{"--format", "tap", rec("pass"), rec("inconclusive")}, 3, false},
		{[]string{rec("pass"), rec("infra"), rec("inconclusive")}, 4, false},
		{[]string{rec("infra"), rec("assertion"), rec("pass")}, 1, false},
		{[]string{rec("pass"), filepath.Join(dir, "missing.rec")}, 4, false},
		{[]string{"--require-end", rec("pass")}, 0, false},
		{[]string{"--format", "xml", rec("pass")}, 2, true},
		{[]string{"--color", "sometimes", rec("pass")}, 2, true},
		{[]string{"--splat", "nope", rec("pass")}, 2, true},
		{[]string{"--splat", "x=(", rec("pass")}, 2, true},
		{[]string{"--no-splat", "nope", rec("pass")}, 2, true},
		{[]string{"--splat-status", "pass", rec("pass")}, 2, true},
		{[]string{"--console", "c.log", rec("pass"), rec("skip")}, 2, true},
		{[]string{"-", "-"}, 2, true},
		{[]string{"--bogus"}, 2, true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			got := run(append([]string{"ktstr-verdict"}, tc.args...), strings.NewReader(""), &out, &errb)
			if got != tc.want {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", got, tc.want, out.String(), errb.String())
			}
			if tc.usage {
				if out.Len() != 0 || strings.Count(errb.String(), "\n") != 1 || !strings.HasPrefix(errb.String(), "ktstr-verdict: ") {
					t.Errorf("usage error: want one line on stderr and nothing on stdout, got\nstdout: %q\nstderr: %q", out.String(), errb.String())
				}
				return
			}
			if errb.Len() != 0 {
				t.Errorf("stderr not empty: %q", errb.String())
			}
			if out.Len() == 0 {
				t.Error("no report on stdout")
			}
		})
	}
}

func TestColorMode(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	tests := []struct {
		mode    string
		out     any
		noColor string
		want    bool
	}{
		{"always", &bytes.Buffer{}, "", true},
		{"always", &bytes.Buffer{}, "1", true}, // asked for explicitly
		{"never", w, "", false},
		{"auto", &bytes.Buffer{}, "", false},
		{"auto", w, "", false}, // a pipe is not a terminal
		{"auto", w, "1", false},
	}
	for _, tc := range tests {
		got, err := colorMode(tc.mode, tc.out.(interface{ Write([]byte) (int, error) }), tc.noColor)
		if err != nil || got != tc.want {
			t.Errorf("colorMode(%q, %T, NO_COLOR=%q) = %v, %v; want %v", tc.mode, tc.out, tc.noColor, got, err, tc.want)
		}
	}
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if got, _ := colorMode("auto", tty, ""); !got {
			t.Error("colorMode(auto, /dev/tty) = false, want true")
		}
		if got, _ := colorMode("auto", tty, "1"); got {
			t.Error("colorMode(auto, /dev/tty, NO_COLOR=1) = true, want false")
		}
	}
}

func TestRunNames(t *testing.T) {
	got := runNames([]string{"-", "a/x.rec", "b/x.rec", "y.jsonl", "z"})
	want := []string{"run", "a/x.rec", "b/x.rec", "y", "z"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("runNames = %q, want %q", got, want)
	}
}

// TestReportOrderFollowsArguments: runs appear in the order given.
func TestReportOrderFollowsArguments(t *testing.T) {
	dir := t.TempDir()
	var args []string
	names := vt.Names()
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		p := filepath.Join(dir, n+".rec")
		os.WriteFile(p, vt.Scenarios()[n].Stream.Bytes(true), 0o644)
		args = append(args, p)
	}
	var out bytes.Buffer
	run(append([]string{"ktstr-verdict", "--format", "tap"}, args...), nil, &out, &bytes.Buffer{})
	for i, n := range names {
		if !strings.Contains(out.String(), fmt.Sprintf(" %d - %s\n", i+1, n)) && !strings.Contains(out.String(), fmt.Sprintf(" %d - %s #", i+1, n)) {
			t.Errorf("test point %d is not %s:\n%s", i+1, n, out.String())
		}
	}
}
