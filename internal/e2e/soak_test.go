package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// soakSummary is scripts/soak's JSON line.
type soakSummary struct {
	Runs          int            `json:"runs"`
	Planned       int            `json:"planned"`
	Verdicts      map[string]int `json:"verdicts"`
	HarnessErrors int            `json:"harness_errors"`
	Errors        []soakError    `json:"errors"`
	NotPassed     []struct {
		Run     int    `json:"run"`
		Verdict string `json:"verdict"`
		Line    string `json:"line"`
	} `json:"not_passed"`
	Wall          map[string]float64 `json:"wall_s"`
	LeftoverProcs int                `json:"leftover_process_runs"`
	LeftoverFiles int                `json:"leftover_file_runs"`
	Dir           string             `json:"dir"`
}

type soakError struct {
	Run      int    `json:"run"`
	Status   int    `json:"status"`
	What     string `json:"what"`
	Evidence string `json:"evidence"`
}

// soak runs scripts/soak with args and returns its status, stdout and
// the JSON summary (its last line).
func soak(t *testing.T, env []string, args ...string) (int, string, soakSummary) {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "soak"), args...)
	cmd.Env = append(os.Environ(), append([]string{"KTSTR_BIN=" + binDir, "TMPDIR=" + t.TempDir()}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	status := exitStatus(t, cmd.Run())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var s soakSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("soak's last line is not its JSON summary (%v):\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	return status, out.String(), s
}

// TestSoakCountsRuns: three real runs (host mode, no VM) that pass: the
// summary counts them, finds no harness error and nothing left over, and
// removes the clean runs' directories.
func TestSoakCountsRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("pipeline test: skipped with -short")
	}
	buildTools(t)
	dir := filepath.Join(t.TempDir(), "soak")
	smoke := filepath.Join(repoRoot(t), "internal/e2e/testdata/host-smoke.json")
	status, out, s := soak(t, nil, "-n", "3", "-d", dir, "--", "--vmm", "host", "--timeout", "60s", "--scenario", smoke)
	if status != 0 || s.Runs != 3 || s.Verdicts["PASS"] != 3 || s.HarnessErrors != 0 || s.LeftoverProcs+s.LeftoverFiles != 0 {
		t.Fatalf("soak: status %d, summary %+v; want 0 and 3 passes, no harness error\n%s", status, s, out)
	}
	if s.Wall["p50"] <= 0 || s.Wall["p95"] < s.Wall["p50"] || s.Wall["max"] < s.Wall["p95"] {
		t.Errorf("wall times %v: want 0 < p50 <= p95 <= max", s.Wall)
	}
	if !strings.Contains(out, "verdicts: PASS=3\nharness errors: 0\n") || !strings.Contains(out, "wall time per run (s): p50=") {
		t.Errorf("summary:\n%s", out)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"results.tsv", "summary.json"}) {
		t.Errorf("soak directory holds %q, want only results.tsv and summary.json (clean runs removed)", names)
	}
}

// fakeRun stands in for ktstr-run: each run goes wrong in one known way,
// so that the soak must count each harness error with its run.
const fakeRun = `#!/bin/sh
n=$(cat "$FAKE_STATE" 2>/dev/null || echo 0)
n=$((n + 1))
echo $n >"$FAKE_STATE"
case $n in
1) echo "PASS run: fine" ;;
2) echo "ERROR run: infrastructure error: lost frames"; exit 4 ;;
3) sleep 300 & echo "PASS run: fine" ;;
4) sleep 300 ;;
5) mkdir "$TMPDIR/ktstr-run.left"; echo "PASS run: fine" ;;
6) : >"$KTSTR_RECORD"; echo "PASS run: fine" ;;
7) mkdir "$TMPDIR/ktstr-run.kept"; echo "FAIL run: assertion failed"; exit 1 ;;
esac
`

// TestSoakCountsHarnessErrors: a run that ends with status 4, leaves a
// process behind, hangs, leaves a run directory after a pass, or whose
// recording replays to another verdict is a harness error with its run
// number and evidence; a failing verdict that keeps its run directory is
// the scenario's own verdict. The leftover process is killed.
func TestSoakCountsHarnessErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("pipeline test: skipped with -short")
	}
	buildTools(t)
	tmp := t.TempDir()
	fake := filepath.Join(tmp, "ktstr-run")
	if err := os.WriteFile(fake, []byte(fakeRun), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "soak")
	status, out, s := soak(t, []string{"KTSTR_RUN=" + fake, "FAKE_STATE=" + filepath.Join(tmp, "state")}, "-n", "7", "-t", "3", "-d", dir)
	if status != 1 || s.Runs != 7 || s.HarnessErrors != 5 || s.Verdicts["PASS"] != 4 || s.Verdicts["FAIL"] != 1 {
		t.Fatalf("soak: status %d, summary %+v; want 1, 7 runs, 5 harness errors, PASS 4 and FAIL 1\n%s", status, s, out)
	}
	want := map[int]string{2: "exit 4 (ERROR)", 3: "process: sleep x1", 4: "timeout after 3s", 5: "file: 1 left in TMPDIR", 6: "replay: status 4, live 0"}
	for _, e := range s.Errors {
		if w, ok := want[e.Run]; !ok || e.What != w {
			t.Errorf("run %d: harness error %q, want %q", e.Run, e.What, w)
		}
		delete(want, e.Run)
		if _, err := os.Stat(filepath.Join(e.Evidence, "stdout")); err != nil {
			t.Errorf("run %d: no evidence kept: %v", e.Run, err)
		}
	}
	for run, w := range want {
		t.Errorf("run %d: no harness error, want %q", run, w)
	}
	if s.LeftoverProcs != 1 || s.LeftoverFiles != 1 {
		t.Errorf("leftovers: processes in %d runs, files in %d, want 1 and 1", s.LeftoverProcs, s.LeftoverFiles)
	}
	// Run 7's own FAIL is listed with its report's first line, and its
	// report kept without its run directory.
	if len(s.NotPassed) != 1 || s.NotPassed[0].Run != 7 || s.NotPassed[0].Line != "FAIL run: assertion failed" {
		t.Errorf("not passed: %+v, want run 7, FAIL run: assertion failed", s.NotPassed)
	}
	if _, err := os.Stat(filepath.Join(dir, "run-7", "stdout")); err != nil {
		t.Errorf("run 7's report was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "run-7", "tmp")); err == nil {
		t.Errorf("run 7's run directory was kept")
	}
	if !strings.Contains(out, "verdicts other than pass or skip: 1 ") || !strings.Contains(out, "  run 7: FAIL run: assertion failed (evidence ") {
		t.Errorf("the summary does not list run 7's FAIL:\n%s", out)
	}
	// The process left over by run 3 was killed.
	b, err := os.ReadFile(filepath.Join(dir, "run-3", "leftover-processes"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.Fields(string(b))[0])
	if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "sleep" {
		t.Errorf("the leftover sleep (pid %d) is still running", pid)
	}
}

// TestSoakUsage: a bad option is one line and status 2.
func TestSoakUsage(t *testing.T) {
	for _, args := range [][]string{{"-n", "0"}, {"-n", "x"}, {"-t"}} {
		cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "soak"), args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 || !strings.HasPrefix(string(out), "soak: ") {
			t.Errorf("soak %q: %v, %q; want status 2 and one line", args, err, out)
		}
	}
}
