package gauntlet

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	vt "github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fakeGauntlet plans a small gauntlet (2 scenarios × 2 topologies ×
// eevdf and scx_a on the project kernel, 3 repeats; smt-siblings skips
// on 1,1,2,1) and fills its runs' recordings with hand-built streams:
// cpuset-split on 1,1,1,2 under scx_a fails its second repeat, its third
// did not run (the gauntlet was stopped); smt-siblings under eevdf is
// unfair on a starved host once.
func fakeGauntlet(t *testing.T) string {
	t.Helper()
	env := testEnv(t)
	m, err := Plan(Spec{
		Scenarios:  []string{"cpuset-split", "smt-siblings"},
		Topologies: []string{"1,1,2,1", "1,1,1,2"},
		Schedulers: []string{"eevdf", "scx_a"},
		Repeat:     3,
	}, env, Options{Name: "demo", VCPUs: 2, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "g")
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	scs := vt.Scenarios()
	for _, j := range m.Runs() {
		stream, noise := "pass", ""
		switch {
		case j.Cell == "cpuset-split.1,1,1,2.scx_a.project" && j.Repeat == 2:
			stream = "assertion"
		case j.Cell == "cpuset-split.1,1,1,2.scx_a.project" && j.Repeat == 3:
			continue // not run
		case j.Cell == "smt-siblings.1,1,1,2.eevdf.project" && j.Repeat == 1:
			stream = "unfair"
			noise = `{"schema": 1, "backend": "qemu", "window_ns": 6000000000, "threads": [{"name": "CPU 0/TCG", "run_ns": 3000000000, "delay_ns": 2000000000}]}`
		}
		d := filepath.Join(dir, j.Dir)
		write(t, filepath.Join(d, RecordsFile), string(scs[stream].Stream.Bytes(false)))
		write(t, filepath.Join(d, "console.log"), "[    0.1] booting\n")
		write(t, filepath.Join(d, "com2.log"), "")
		if noise != "" {
			write(t, filepath.Join(d, NoiseFile), noise)
		}
		write(t, filepath.Join(d, VerdictFile), "{}\n")
		if stream == "assertion" {
			write(t, filepath.Join(d, StderrFile), "ktstr-boot: run directory /tmp/x\nktstr-boot: vm ended: poweroff after 3.2s\n\n")
			if err := j.Repro(d, "/usr/local/bin/ktstr-run"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAggregate(t *testing.T) {
	dir := fakeGauntlet(t)
	rep, err := Load(dir, verdict.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != verdict.StatusFail || rep.ExitStatus != 1 {
		t.Errorf("status %s %d, want FAIL 1", rep.Status, rep.ExitStatus)
	}
	want := Totals{Cells: 8, Skipped: 2, FailedCells: 2, Runs: 18, NotRun: 1, Pass: 15, Inconclusive: 1, Fail: 1}
	if rep.Totals != want {
		t.Errorf("totals %+v, want %+v", rep.Totals, want)
	}
	for _, c := range rep.Cells {
		switch c.ID {
		case "cpuset-split.1,1,1,2.scx_a.project":
			if c.Status != verdict.StatusFail || c.Runs != 2 || c.Planned != 3 || c.Failures != 1 || c.Rate != 0.5 || c.Interval != [2]float64{0.0945, 0.9055} {
				t.Errorf("cell %+v: want FAIL, 1 of 2 (of 3 planned), 50%%, [9.45%%, 90.55%%]", c)
			}
			if r := c.Results[1]; r.Repro != "runs/cpuset-split.1,1,1,2.scx_a.project/r2/repro/run" {
				t.Errorf("run 2 repro %q", r.Repro)
			}
			if c.Results[2].Ran {
				t.Error("run 3 ran")
			}
		case "smt-siblings.1,1,1,2.eevdf.project":
			if c.Status != verdict.StatusInconclusive || c.Failures != 1 || c.Results[0].Cause != verdict.CauseHostContention {
				t.Errorf("cell %+v: want INCONCLUSIVE, host contention", c)
			}
		case "smt-siblings.1,1,2,1.eevdf.project", "smt-siblings.1,1,2,1.scx_a.project":
			if c.Status != verdict.StatusSkip || !strings.Contains(c.Skip, "needs SMT") || len(c.Results) != 0 {
				t.Errorf("cell %+v: want a skip needing SMT", c)
			}
		default:
			if c.Status != verdict.StatusPass || c.Runs != 3 || c.Interval != [2]float64{0, 0.5615} {
				t.Errorf("cell %+v: want PASS 3 of 3, [0, 56.15%%]", c)
			}
		}
	}
	for format, ext := range map[string]string{"text": "txt", "json": "json", "junit": "xml", "tap": "tap", "html": "html"} {
		var b bytes.Buffer
		if err := Write(&b, format, rep, 0); err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", "aggregate."+ext), b.Bytes())
	}
	// The same directory, loaded again: the same report, byte for byte.
	rep2, err := Load(dir, verdict.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(rep)
	b, _ := json.Marshal(rep2)
	if !bytes.Equal(a, b) {
		t.Error("two loads of one directory differ")
	}
}

// TestAggregateTAPProve: Debian's prove reads the aggregate's TAP and
// fails it, naming the runs that did not pass.
func TestAggregateTAPProve(t *testing.T) {
	prove, err := exec.LookPath("prove")
	if err != nil {
		t.Skip("prove not installed (Debian's perl package has it)")
	}
	rep, err := Load(fakeGauntlet(t), verdict.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Write(&b, "tap", rep, 0)
	p := filepath.Join(t.TempDir(), "g.tap")
	write(t, p, b.String())
	out, err := exec.Command(prove, "--exec", "cat", p).CombinedOutput()
	if err == nil || strings.Contains(string(out), "Parse errors") || !strings.Contains(string(out), "Tests: 20 Failed: 3)") {
		t.Errorf("prove: %v, want a failure of 3 of 20 test points (18 runs, 2 skipped cells) without parse errors\n%s", err, out)
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s", path, got)
	}
}

// TestReproScript: the re-run script of a failed run has the scheduler
// and scenario copied next to it and checks the kernel's hash; run
// against a stand-in ktstr-run it passes ktstr-boot the copies.
func TestReproScript(t *testing.T) {
	env := testEnv(t)
	inc := filepath.Join(t.TempDir(), "helper")
	write(t, inc, "helper")
	m, err := Plan(Spec{Schedulers: []string{"scx_a --sched-arg=-v --include=" + inc + ":/ktstr/bin/helper --sched-arg=seed={repeat}"}, Repeat: 2},
		env, Options{Name: "g", VCPUs: 2, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	j := m.Runs()[1]
	d := filepath.Join(dir, j.Dir)
	if err := j.Repro(d, "/nonexistent/ktstr-run"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"run", "scenario.json", "bin/scx_a", "files/1-helper"} {
		if _, err := os.Stat(filepath.Join(d, ReproDir, f)); err != nil {
			t.Errorf("repro lacks %s: %v", f, err)
		}
	}
	// A stand-in ktstr-run prints its arguments, one a line.
	fake := filepath.Join(t.TempDir(), "ktstr-run")
	write(t, fake, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
	os.Chmod(fake, 0o755)
	// Move the run's directory: the script is self-contained.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(filepath.Join(d, ReproDir), moved); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(moved, "run"), "--keep")
	cmd.Env = append(os.Environ(), "KTSTR_RUN="+fake)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	want := strings.Join([]string{"--kernel", j.Kernel, "--topology", "1,1,2,1", "--sched-arg=-v", "--sched-arg=seed=2",
		"--scenario", moved + "/scenario.json", "--scheduler", moved + "/bin/scx_a", "--include=" + moved + "/files/1-helper:/ktstr/bin/helper", "--keep"}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("run passed\n%s\nwant\n%s", out, want)
	}
	// Another kernel under the same path: refused.
	write(t, j.Kernel, "changed")
	out, err = exec.Command(filepath.Join(moved, "run")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "the failed run booted") {
		t.Errorf("run with a changed kernel: %v\n%s", err, out)
	}
	if err := j.Check(); err == nil {
		t.Error("Check passed a changed kernel")
	}
}

// TestQuoteShell: what Quote writes, sh reads back as the same words.
func TestQuoteShell(t *testing.T) {
	words := []string{"plain", "", "two words", "it's", `back\slash`, "$HOME", "`id`", "a\nb", "*", "--x=y z", "tab\there", "\"q\""}
	out, err := exec.Command("sh", "-c", "printf '%s\\0' "+QuoteArgs(words)).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if strings.Join(got, "|") != strings.Join(words, "|") {
		t.Errorf("sh read %q, want %q", got, words)
	}
}
