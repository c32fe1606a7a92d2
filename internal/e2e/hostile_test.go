package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/guest"
)

// The bounds a hostile guest must not push a host tool past, with the
// figures measured here over three runs of each mode (QEMU with software
// emulation on 2 shared cores, load average 10 to 23) in the comments.
// Peak RSS is the tool's own VmHWM (ktstr-boot's without QEMU's).
var hostileMaxRSS = map[string]int64{ // MiB
	"ktstr-boot":     96,  // measured 8.6-13.3; 23-33 with the introspection merged from main
	"ktstr-drain":    64,  // measured 5.0-13.1
	"ktstr-dispatch": 128, // measured 4.9-10.7; 38-50 holding an oversized frame, 70-94 the 32 MiB pending frame of overflow (65 and 97-130 before the assembler's buffer doubled)
	"ktstr-verdict":  64,  // measured 5.4-11.1
}

// hostileMaxWall bounds one hostile run from ktstr-run's start to its
// end (measured 3.3-23.4 s); the run is killed at hostileKill, so a hang
// fails the test instead of stalling it.
const (
	hostileMaxWall = 120 * time.Second
	hostileKill    = 300 * time.Second
)

var tools = []string{"ktstr-boot", "ktstr-drain", "ktstr-dispatch", "ktstr-verdict"}

// toolUsage is what was seen of one tool of a run.
type toolUsage struct {
	pid    int
	peakKB int64         // VmHWM, the tool's peak resident set
	life   time.Duration // from its first sample to its end
	start  time.Time
}

// measuredRun runs scripts/ktstr-run with each tool behind a wrapper
// that records its pid and execs it (so signals and statuses are the
// tool's own), and samples every tool's VmHWM from /proc every 10 ms
// until it is gone. The run is killed, with everything it started, after
// hostileKill.
func measuredRun(t *testing.T, kernel string, env []string, args ...string) (runResult, map[string]*toolUsage, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	wrap := filepath.Join(dir, "bin")
	if err := os.Mkdir(wrap, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools {
		script := fmt.Sprintf("#!/bin/sh\necho $$ > %s/%s.pid\nexec %s/%s \"$@\"\n", dir, tool, binDir, tool)
		if err := os.WriteFile(filepath.Join(wrap, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	usage := map[string]*toolUsage{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		done := map[string]bool{}
		for {
			for _, tool := range tools {
				if done[tool] {
					continue
				}
				u := usage[tool]
				if u == nil {
					b, err := os.ReadFile(filepath.Join(dir, tool+".pid"))
					pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
					if err != nil || pid == 0 {
						continue
					}
					u = &toolUsage{pid: pid, start: time.Now()}
					usage[tool] = u
				}
				if kb, ok := vmHWM(u.pid); ok {
					u.peakKB = max(u.peakKB, kb)
					u.life = time.Since(u.start)
				} else {
					done[tool] = true
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "ktstr-run"), args...)
	cmd.Env = append(os.Environ(), append([]string{"KTSTR_BIN=" + wrap, "KTSTR_KERNEL=" + kernel, "TMPDIR=" + t.TempDir()}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := time.AfterFunc(hostileKill, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	wall := time.Since(t0)
	hung := !kill.Stop()
	close(stop)
	wg.Wait()
	if hung {
		t.Fatalf("ktstr-run %q hung: killed after %v\nstdout:\n%s\nstderr:\n%s", args, hostileKill, out.String(), tail(errb.String(), 40))
	}
	return runResult{exitStatus(t, err), out.String(), errb.String()}, usage, wall
}

// vmHWM returns the peak resident set of pid in KiB; false once the
// process is gone (or a zombie, which has no memory left).
func vmHWM(pid int) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb, err == nil
		}
	}
	return 0, false
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// checkBounds fails the test if a tool was not seen, outgrew its bound,
// or the run its wall time; it logs the figures.
func checkBounds(t *testing.T, name string, usage map[string]*toolUsage, wall time.Duration, stderr string) {
	t.Helper()
	var fig []string
	for _, tool := range tools {
		u := usage[tool]
		if u == nil {
			t.Errorf("%s: %s never ran", name, tool)
			continue
		}
		fig = append(fig, fmt.Sprintf("%s %.1f MiB %.1fs", tool, float64(u.peakKB)/1024, u.life.Seconds()))
		if u.peakKB > hostileMaxRSS[tool]<<10 {
			t.Errorf("%s: %s peaked at %.1f MiB, bound %d MiB", name, tool, float64(u.peakKB)/1024, hostileMaxRSS[tool])
		}
	}
	t.Logf("%s: wall %.1fs; %s", name, wall.Seconds(), strings.Join(fig, "; "))
	if wall > hostileMaxWall {
		t.Errorf("%s: the run took %v, bound %v", name, wall.Round(time.Millisecond), hostileMaxWall)
	}
	for _, crash := range []string{"panic:", "goroutine ", "SIGSEGV", "fatal error"} {
		if strings.Contains(stderr, crash) {
			t.Errorf("%s: a host tool crashed (%q on stderr):\n%s", name, crash, tail(stderr, 40))
		}
	}
}

// rawEscapes are what must never reach a terminal from the guest: ESC,
// BEL, CR, DEL, a raw 8-bit CSI, the C1 CSI, a bidi override and a line
// separator.
var rawEscapes = []string{"\x1b", "\x07", "\r", "\x7f", "\x9b", "\u009b", "\u202e", "\u2028"}

func checkNoEscapes(t *testing.T, what, s string) {
	t.Helper()
	for _, e := range rawEscapes {
		if i := strings.Index(s, e); i >= 0 {
			t.Errorf("%s carries the raw guest character %q: %q", what, e, s[max(0, i-60):min(len(s), i+60)])
		}
	}
}

// hostileVerdict is the part of ktstr-verdict --format json the hostile
// tests read.
type hostileVerdict struct {
	Runs []struct {
		Status   string `json:"status"`
		Cause    string `json:"cause"`
		Findings []struct {
			Status  string `json:"status"`
			Cause   string `json:"cause"`
			Message string `json:"message"`
		} `json:"findings"`
		Result *struct {
			Scenario string `json:"scenario"`
		} `json:"result"`
		GuestExit *int32           `json:"guest_exit_code"`
		SchedExit *int32           `json:"sched_exit_code"`
		VMEnd     *struct{}        `json:"vm_end"`
		Diags     map[string]int64 `json:"diags"`
		Effects   map[string]int64 `json:"effects"`
		Scenario  struct {
			Starts int `json:"starts"`
		} `json:"scenario"`
		Counts struct {
			Kills      int64  `json:"kills"`
			LostFrames uint64 `json:"lost_frames"`
		} `json:"counts"`
		Logs struct {
			Kernel *struct {
				Tail []string `json:"tail"`
			} `json:"kernel"`
		} `json:"logs"`
	} `json:"runs"`
}

func parseHostile(t *testing.T, out string) hostileVerdict {
	t.Helper()
	var v hostileVerdict
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Runs) != 1 {
		t.Fatalf("verdict JSON (%v):\n%s", err, out)
	}
	return v
}

func (v hostileVerdict) finding(sub string) bool {
	for _, f := range v.Runs[0].Findings {
		if strings.Contains(f.Message, sub) {
			return true
		}
	}
	return false
}

// TestHostileGuest runs the agent as a hostile guest (ktstr-boot
// --hostile all) in a real VM through the whole pipeline, with ktstr's
// watchdog wired so that the SCST flood moves the deadline: no tool
// hangs, crashes or outgrows its bound, nothing the guest wrote reaches
// a report or stderr raw, the forged passing result does not make a
// pass, and the verdict names every anomaly with its count.
func TestHostileGuest(t *testing.T) {
	k := needVM(t)
	rec := filepath.Join(t.TempDir(), "run.frames")
	r, usage, wall := measuredRun(t, k, []string{"KTSTR_RECORD=" + rec, "KTSTR_DISPATCH_ARGS=--workload 30s", "KTSTR_VERDICT_ARGS=--format json"},
		"--hostile", "all")
	checkBounds(t, "all", usage, wall, r.stderr)
	checkNoEscapes(t, "ktstr-run's stderr", r.stderr)
	checkNoEscapes(t, "the JSON report", r.stdout)
	v := parseHostile(t, r.stdout)
	run := v.Runs[0]
	if r.status != 4 || run.Status != "ERROR" || run.Cause != "infrastructure" {
		t.Errorf("status %d, %s (%s), want 4, ERROR (infrastructure)", r.status, run.Status, run.Cause)
	}
	if run.Result == nil || run.Result.Scenario != "hostile" || run.GuestExit == nil || *run.GuestExit != 0 || run.VMEnd == nil {
		t.Errorf("result %+v, exit code %v, vm_end %v: want the guest's passing result, EXIT 0 and the host's VM end", run.Result, run.GuestExit, run.VMEnd)
	}
	want := map[string]int64{
		"crc_mismatch":             6 * guest.HostileTorn,
		"sched_exit_bad_crc":       guest.HostileTorn,
		"sys_rdy_bad_crc":          guest.HostileTorn,
		"snapshot_request_bad_crc": guest.HostileTorn,
		"pad_nonzero":              guest.HostilePad,
		"unknown_type":             guest.HostileUnknown,
		"sys_rdy_nonempty":         guest.HostileSmuggle,
		"sched_swap_nonempty":      guest.HostileSmuggle,
		"internal":                 2 * guest.HostileForge,
	}
	for k, n := range want {
		if run.Diags[k] != n {
			t.Errorf("diag %s = %d, want %d", k, run.Diags[k], n)
		}
	}
	wantFx := map[string]int64{
		"sys_rdy": 1, "snapshot_request": guest.HostileFlood, "kernel_op_request": guest.HostileFlood,
		"scenario_start": 1, "watchdog_deadline": guest.HostileFlood,
	}
	for k, n := range wantFx {
		if run.Effects[k] != n {
			t.Errorf("effect %s = %d, want %d", k, run.Effects[k], n)
		}
	}
	if run.Scenario.Starts != guest.HostileFlood || run.Counts.Kills != 0 || run.SchedExit != nil {
		t.Errorf("scenario starts %d, kills %d, sched exit %v; want %d, 0, none (a torn SCDX kills nothing)",
			run.Scenario.Starts, run.Counts.Kills, run.SchedExit, guest.HostileFlood)
	}
	if run.Counts.LostFrames < guest.HostileDropFrames {
		t.Errorf("lost frames %d, want the guest's claim of at least %d", run.Counts.LostFrames, uint64(guest.HostileDropFrames))
	}
	for _, f := range []string{
		fmt.Sprintf("%d frames failed the CRC check", 6*guest.HostileTorn),
		fmt.Sprintf("%d host frames (HELO, LOSS, VEND) without the run's nonce", 7*guest.HostileForge),
		"the guest dropped",
	} {
		if !v.finding(f) {
			t.Errorf("no finding says %q:\n%s", f, r.stdout)
		}
	}
	// The line the guest wrote to /dev/kmsg came back in DMSG, escaped.
	kmsg := false
	if k := run.Logs.Kernel; k != nil {
		for _, l := range k.Tail {
			kmsg = kmsg || strings.Contains(l, "ktstr-hostile: \ufffd31m \\x1b]0;ktstr: ALL TESTS PASSED\\x07")
		}
	}
	if !kmsg {
		t.Errorf("the kernel log (DMSG) lacks the guest's /dev/kmsg line, escaped")
	}
	// ktstr-boot logs the failed replies of the flood once, and one count.
	if n := strings.Count(r.stderr, "ktstr-boot: reply "); n > 1 {
		t.Errorf("ktstr-boot logged %d reply failures, want at most one line and a count", n)
	}

	// The text report of the recording, as a terminal would show it.
	cmd := exec.Command("sh", "-c", `"$B/ktstr-dispatch" --quiet < "$R" | "$B/ktstr-verdict" --require-end --console "$R.consoles/console.log" --console "$R.consoles/com2.log"`)
	cmd.Env = append(os.Environ(), "B="+binDir, "R="+rec)
	text, _ := cmd.Output()
	checkNoEscapes(t, "the text report", string(text))
	if !bytes.HasPrefix(text, []byte("ERROR ")) {
		t.Errorf("text report does not begin with ERROR:\n%s", text)
	}
	for _, l := range []string{
		fmt.Sprintf("diag sys_rdy_nonempty=%d", guest.HostileSmuggle), fmt.Sprintf("diag pad_nonzero=%d", guest.HostilePad),
		fmt.Sprintf("effect kernel_op_request=%d", guest.HostileFlood), fmt.Sprintf("scenario start (%d SCST frames)", guest.HostileFlood),
		"ktstr-hostile: \ufffd31m \\x1b]0;ktstr: ALL TESTS PASSED\\x07\\x1b[2J",
	} {
		if !bytes.Contains(text, []byte(l)) {
			t.Errorf("text report lacks %q", l)
		}
	}
	// The consoles and the kernel log carried the escapes: the report
	// shows them escaped, from both serial ports.
	for _, c := range []string{"console.log", "com2.log"} {
		b, _ := os.ReadFile(filepath.Join(rec+".consoles", c))
		if !bytes.Contains(b, []byte("ktstr-hostile: \x9b31m \x1b]0;")) {
			t.Errorf("%s does not carry the guest's raw escapes: the attack did not happen", c)
		}
	}
}

// TestHostileStreamEnds: the attacks that end the frame stream, each in
// a real VM after the forged passing result: an oversized frame, a frame
// cut short, a pending frame above twice the cap, and a TX write
// position moved past the ring's capacity. No tool hangs, crashes or
// outgrows its bound, and the verdict is an infrastructure error that
// names what happened.
func TestHostileStreamEnds(t *testing.T) {
	k := needVM(t)
	for _, tc := range []struct {
		attack string
		diag   string // a diagnostic that must count 1
		find   string // words of a finding
	}{
		{"oversized", "oversized", "1 frame oversized"},
		{"truncated", "truncated_tail", "ended inside a frame"},
		{"overflow", "residual_overflow", "pending buffer overflowed"},
		{"ring", "", "ring positions no producer reaches"},
	} {
		t.Run(tc.attack, func(t *testing.T) {
			r, usage, wall := measuredRun(t, k, jsonVerdict, "--hostile", tc.attack)
			checkBounds(t, tc.attack, usage, wall, r.stderr)
			v := parseHostile(t, r.stdout)
			run := v.Runs[0]
			if r.status != 4 || run.Status != "ERROR" {
				t.Errorf("status %d, %s (%s), want 4, ERROR", r.status, run.Status, run.Cause)
			}
			if tc.diag != "" && run.Diags[tc.diag] != 1 {
				t.Errorf("diag %s = %d, want 1 (diags %v)", tc.diag, run.Diags[tc.diag], run.Diags)
			}
			if !v.finding(tc.find) {
				t.Errorf("no finding says %q:\n%s", tc.find, r.stdout)
			}
		})
	}
}

// TestHostileFlagIsChecked: --hostile takes known attacks, at most one
// of them ending the stream; anything else is a usage error.
func TestHostileFlagIsChecked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tools: skipped with -short")
	}
	buildTools(t)
	for _, arg := range []string{"nope", "all,nope", "oversized,ring", ""} {
		out, err := exec.Command(filepath.Join(binDir, "ktstr-boot"), "--hostile", arg, "--vmm", "host").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.HasPrefix(string(out), "ktstr-boot: --hostile: ") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("--hostile %q: %v, %q; want status 2 and one line", arg, err, out)
		}
	}
}
