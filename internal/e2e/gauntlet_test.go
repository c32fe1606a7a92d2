package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/boot"
	"github.com/ktstr-go/ktstr/internal/gauntlet"
	"github.com/ktstr-go/ktstr/internal/verdict"
)

// needGauntlet skips unless GNU parallel is installed, and needs what a
// scheduler run needs.
func needGauntlet(t *testing.T) (kernel, schedDir string) {
	t.Helper()
	if _, err := exec.LookPath("parallel"); err != nil {
		t.Skip("GNU parallel not installed (scripts/install-deps installs it)")
	}
	return needSched(t)
}

type gauntletResult struct {
	status         int
	stdout, stderr string
	out            string // the gauntlet's directory
	tmp            string // the TMPDIR it ran with
}

// runGauntlet runs scripts/ktstr-gauntlet with args, its directory and
// TMPDIR under the test's own.
func runGauntlet(t *testing.T, args ...string) gauntletResult {
	t.Helper()
	cmd, r := gauntletCmd(t, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	r.status = exitStatus(t, cmd.Run())
	r.stdout, r.stderr = o.String(), e.String()
	return r
}

func gauntletCmd(t *testing.T, args ...string) (*exec.Cmd, gauntletResult) {
	t.Helper()
	r := gauntletResult{out: filepath.Join(t.TempDir(), "g"), tmp: t.TempDir()}
	cmd := exec.Command(filepath.Join(repoRoot(t), "scripts", "ktstr-gauntlet"), append([]string{"--out", r.out}, args...)...)
	cmd.Env = append(os.Environ(), "KTSTR_BIN="+binDir, "TMPDIR="+r.tmp)
	return cmd, r
}

func testdata(t *testing.T, name string) string {
	return filepath.Join(repoRoot(t), "internal", "e2e", "testdata", name)
}

func readGauntletReport(t *testing.T, dir string) gauntlet.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep gauntlet.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	return rep
}

// leftovers lists what a gauntlet left in its TMPDIR, and the processes
// still naming it or the gauntlet's directory.
func leftovers(t *testing.T, r gauntletResult) []string {
	t.Helper()
	var left []string
	ents, _ := os.ReadDir(r.tmp)
	for _, e := range ents {
		left = append(left, "file "+filepath.Join(r.tmp, e.Name()))
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cl := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cl, r.tmp) || strings.Contains(cl, r.out) {
			left = append(left, "process "+filepath.Dir(p)+": "+cl)
		}
	}
	return left
}

// TestGauntletMatrix: 3 scenarios × 2 topologies × 2 schedulers with
// --jobs 2 passes. The SMT scenario skips on the shape without SMT, with
// the reason; every run keeps its recordings, verdict and command; the
// reports are written, ktstr-verdict over the directory gives the same
// JSON again from the recordings alone, each run's live verdict agrees
// with the replay, prove passes the TAP, and nothing is left behind.
func TestGauntletMatrix(t *testing.T) {
	k, sched := needGauntlet(t)
	r := runGauntlet(t, "--jobs", "2", "--vcpus", "4", "--name", "matrix",
		"--scenario", testdata(t, "gauntlet-spin.json"), "--scenario", testdata(t, "gauntlet-yield.json"), "--scenario", testdata(t, "gauntlet-smt.json"),
		"--topology", "1,1,2,1", "--topology", "1,1,1,2",
		"--scheduler", "eevdf", "--scheduler", filepath.Join(sched, "scx_simple"),
		"--kernel", "project="+k)
	if r.status != 0 {
		t.Fatalf("gauntlet: status %d, want 0\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "12 cells (2 skipped), 10 runs, 2 at once (--jobs 2, vCPU budget 4)") {
		t.Errorf("no plan line on stderr:\n%s", r.stderr)
	}
	if n := strings.Count(r.stderr, "ktstr-gauntlet: ok runs/"); n != 10 {
		t.Errorf("%d progress lines for runs that passed, want 10 (plain lines without a terminal):\n%s", n, r.stderr)
	}
	realK, err := filepath.EvalSymlinks(k) // runs name the kernel's file, not a link that may move
	if err != nil {
		t.Fatal(err)
	}
	rep := readGauntletReport(t, r.out)
	if rep.Status != "PASS" || rep.Totals.Cells != 12 || rep.Totals.Skipped != 2 || rep.Totals.Runs != 10 || rep.Totals.Pass != 10 {
		t.Fatalf("report %s %+v, want PASS, 12 cells, 2 skipped, 10 runs passed\n%s", rep.Status, rep.Totals, r.stdout)
	}
	for _, c := range rep.Cells {
		if c.Scenario == "gauntlet-smt" && c.Topology == "1,1,2,1" {
			if !strings.Contains(c.Skip, "needs SMT") {
				t.Errorf("cell %s: skip %q, want the SMT reason", c.ID, c.Skip)
			}
			continue
		}
		if c.Skip != "" || c.Runs != 1 {
			t.Errorf("cell %s: skip %q, %d runs; want one run", c.ID, c.Skip, c.Runs)
			continue
		}
		run := filepath.Join(r.out, c.Results[0].Dir)
		// The consoles may be empty: the kernel runs quiet, and ktstr-boot
		// ends the VM at the agent's done mark, before "Power down".
		for _, f := range []string{"frames", "records", "console.log", "com2.log", "noise.json", "verdict.json", "command", "job.json"} {
			if st, err := os.Stat(filepath.Join(run, f)); err != nil || (f != "com2.log" && f != "console.log" && st.Size() == 0) {
				t.Errorf("%s: %s missing or empty (%v)", c.ID, f, err)
			}
		}
		var live verdict.Report
		if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(run, "verdict.json"))), &live); err != nil || len(live.Runs) != 1 {
			t.Fatalf("%s: verdict.json: %v", c.ID, err)
		}
		if string(live.Runs[0].Status) != string(c.Results[0].Status) || live.Runs[0].Name != c.ID+"/r1" {
			t.Errorf("%s: live verdict %s %q, the replay %s", c.ID, live.Runs[0].Status, live.Runs[0].Name, c.Results[0].Status)
		}
		cmd := mustRead(t, filepath.Join(run, "command"))
		if !strings.Contains(cmd, "scripts/ktstr-run --kernel "+gauntlet.Quote(realK)) || !strings.Contains(cmd, "--topology "+c.Topology) {
			t.Errorf("%s: command %q", c.ID, cmd)
		}
	}
	// The matrix on stdout.
	for _, want := range []string{"kernel project", "scheduler   topology  gauntlet-spin  gauntlet-yield  gauntlet-smt", "scx_simple  1,1,1,2   ok 1/1         ok 1/1          ok 1/1", "PASS matrix: all 10 runs of 10 cells passed (2 cells skipped)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text report lacks %q:\n%s", want, r.stdout)
		}
	}
	// Replay: the same aggregate from the recordings alone.
	replay, err := exec.Command(filepath.Join(binDir, "ktstr-verdict"), "--format", "json", r.out).Output()
	if err != nil {
		t.Fatalf("ktstr-verdict %s: %v", r.out, err)
	}
	if string(replay) != mustRead(t, filepath.Join(r.out, "report.json")) {
		t.Errorf("the replay differs from report.json")
	}
	for _, f := range []string{"junit.xml", "report.tap", "index.html"} {
		if st, err := os.Stat(filepath.Join(r.out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing (%v)", f, err)
		}
	}
	if prove, err := exec.LookPath("prove"); err == nil {
		if out, err := exec.Command(prove, "--exec", "cat", filepath.Join(r.out, "report.tap")).CombinedOutput(); err != nil || !strings.Contains(string(out), "Result: PASS") {
			t.Errorf("prove report.tap: %v\n%s", err, out)
		}
	}
	if left := leftovers(t, r); len(left) > 0 {
		t.Errorf("the gauntlet left behind:\n%s", strings.Join(left, "\n"))
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wrappedScheduler is a scheduler entry that runs schedwrap with
// wrapArgs in front of scx_simple (packed with its libraries).
func wrappedScheduler(t *testing.T, name, sched string, wrapArgs ...string) string {
	t.Helper()
	deps, err := boot.ELFDeps(sched)
	if err != nil {
		t.Fatal(err)
	}
	dst := "/ktstr/bin/" + filepath.Base(sched)
	e := []string{name + "=" + filepath.Join(binDir, "schedwrap"), "--include=" + sched + ":" + dst}
	for _, d := range deps {
		e = append(e, "--include="+d.Src+":"+d.Dst)
	}
	for _, a := range append(wrapArgs, dst) {
		e = append(e, "--sched-arg="+a)
	}
	return strings.Join(e, " ")
}

// TestGauntletRepeat: --repeat 3 of a cell that fails its second repeat
// on purpose (schedwrap -fail-if={repeat}=2) reports the cell failing, 1
// of 3 with its rate and 95% interval, never retried until green; the
// failed run's re-run script, with the scheduler copied in, boots the
// same cell again and fails the same way.
func TestGauntletRepeat(t *testing.T) {
	k, sched := needGauntlet(t)
	entry := wrappedScheduler(t, "flaky", filepath.Join(sched, "scx_simple"), "-fail-if={repeat}=2")
	matrix := filepath.Join(t.TempDir(), "matrix")
	if err := os.WriteFile(matrix, []byte("# one cell, three repeats\nscenario "+testdata(t, "gauntlet-spin.json")+"\nscheduler "+entry+"\nkernel project="+k+"\nrepeat 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runGauntlet(t, "--jobs", "2", "--vcpus", "4", "--matrix", matrix)
	if r.status != 1 {
		t.Fatalf("gauntlet: status %d, want 1\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
	}
	rep := readGauntletReport(t, r.out)
	c := rep.Cells[0]
	if c.Status != "FAIL" || c.Runs != 3 || c.Failures != 1 || c.Rate != 0.3333 || c.Interval != [2]float64{0.0615, 0.7923} {
		t.Fatalf("cell %+v: want FAIL, 1 of 3, 33.33%%, [6.15%%, 79.23%%]", c)
	}
	for i, res := range c.Results {
		if want := map[bool]string{true: "FAIL", false: "PASS"}[i == 1]; string(res.Status) != want {
			t.Errorf("repeat %d: %s (%s), want %s", i+1, res.Status, res.Reason, want)
		}
	}
	if !strings.Contains(r.stdout, "flaky.project: 1/3 failed, 33.3% (95% 6.2%..79.2%)") || !strings.Contains(r.stdout, "FAIL 1/3") {
		t.Errorf("the text report does not give the rate:\n%s", r.stdout)
	}
	repro := filepath.Join(r.out, c.Results[1].Repro)
	if c.Results[1].Repro == "" || c.Results[0].Repro != "" {
		t.Fatalf("repro scripts %q, %q: want one for the failed run only", c.Results[0].Repro, c.Results[1].Repro)
	}
	for _, f := range []string{"bin/schedwrap", "files/0-scx_simple", "scenario.json"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(repro), f)); err != nil {
			t.Errorf("repro lacks %s: %v", f, err)
		}
	}
	cmd := exec.Command(repro)
	cmd.Env = append(os.Environ(), "KTSTR_BIN="+binDir, "TMPDIR="+t.TempDir(), "KTSTR_VERDICT_ARGS=--format json")
	var rerr bytes.Buffer
	cmd.Stderr = &rerr
	out, err := cmd.Output()
	if s := exitStatus(t, err); s != 1 || !strings.Contains(string(out), "failing on purpose (-fail-if 2=2)") {
		t.Errorf("the re-run: status %d, want 1 and the same failure\n%s\nstderr:\n%s\nscript:\n%s", s, out, rerr.String(), mustRead(t, repro))
	}
	if left := leftovers(t, r); len(left) > 0 {
		t.Errorf("the gauntlet left behind:\n%s", strings.Join(left, "\n"))
	}
}

// TestGauntletInterrupt: Ctrl-C (SIGINT to the gauntlet's process group,
// as a terminal sends it) while runs are booted stops every VM and
// leaves no process, socket or run directory behind; the partial report
// is written and says what did not run.
func TestGauntletInterrupt(t *testing.T) {
	k, _ := needGauntlet(t)
	cmd, r := gauntletCmd(t, "--jobs", "2", "--vcpus", "4", "--repeat", "2", "--scenario", testdata(t, "gauntlet-hold.json"), "--kernel", "project="+k)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until both runs' VMs are up (QEMU processes naming the
	// test's TMPDIR, where the runs' directories are).
	deadline := time.Now().Add(3 * time.Minute)
	for {
		n := 0
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if bytes.HasPrefix(b, []byte("qemu-system")) || bytes.Contains(b, []byte("/qemu-system")) {
				if bytes.Contains(b, []byte(r.tmp)) {
					n++
				}
			}
		}
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			t.Fatalf("no two VMs within 3 minutes\n%s", e.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the guests are running their scenario
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the gauntlet did not end within 2 minutes of SIGINT\n%s", e.String())
	}
	r.stdout, r.stderr = o.String(), e.String()
	if s := exitStatus(t, err); s != 130 {
		t.Errorf("status %d, want 130\n%s", s, r.stderr)
	}
	// Nothing of the process group is left.
	if err := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the gauntlet's process group lives on (%v)", err)
	}
	if left := leftovers(t, r); len(left) > 0 {
		t.Errorf("the gauntlet left behind:\n%s", strings.Join(left, "\n"))
	}
	rep := readGauntletReport(t, r.out)
	if rep.Status != "ERROR" || rep.Totals.NotRun != 2 || rep.Totals.Runs != 2 || !strings.Contains(rep.Reason, "2 of 2 runs did not run") {
		t.Errorf("partial report %s %+v %q: want ERROR with 2 of 2 runs not run", rep.Status, rep.Totals, rep.Reason)
	}
	if !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("stderr does not say interrupted:\n%s", r.stderr)
	}
}

// sshd starts an OpenSSH server on 127.0.0.1 (a free port) with a
// temporary host key, accepting a temporary key for this user; it stops
// with the test. It returns the ssh command GNU parallel's --sshlogin
// takes and the server's log.
func sshd(t *testing.T) (login, log string) {
	t.Helper()
	sshdBin, err := exec.LookPath("sshd")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/sshd"); err != nil {
			t.Skip("sshd not installed (scripts/install-deps installs openssh-server)")
		}
		sshdBin = "/usr/sbin/sshd"
	}
	for _, b := range []string{"ssh", "ssh-keygen", "rsync"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (scripts/install-deps installs it)", b)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("sshd on loopback needs root here (its privilege separation)")
	}
	// sshd refuses to start without its privilege separation directory,
	// which the Debian package makes when its service starts.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skip(err)
	}
	d := t.TempDir()
	for _, k := range []string{"host", "user"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(d, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(d, "user.pub"))
	os.WriteFile(filepath.Join(d, "authorized_keys"), pub, 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := filepath.Join(d, "sshd_config")
	os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s/host
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
LogLevel INFO
`, port, d, d)), 0o600)
	log = filepath.Join(d, "sshd.log")
	cmd := exec.Command(sshdBin, "-D", "-f", conf, "-E", log)
	if out, err := exec.Command(sshdBin, "-t", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	login = fmt.Sprintf("ssh -i %s/user -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR %s@127.0.0.1", d, port, user)
	// Wait until it answers.
	for i := 0; ; i++ {
		args := append(strings.Fields(login)[1:], "true")
		if err := exec.Command("ssh", args...).Run(); err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("sshd on port %d does not answer\n%s", port, mustRead(t, log))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return login, log
}

// TestGauntletSSH runs two cells on a "remote" host: an sshd on
// 127.0.0.1 that the test starts and stops, with the ktstr checkout
// under another path (--remote-root). GNU parallel sends each run's job
// over ssh, the run happens there, its directory comes back; the
// report passes and the remote work directories are gone.
func TestGauntletSSH(t *testing.T) {
	k, _ := needGauntlet(t)
	login, log := sshd(t)
	// The "remote" checkout: scripts and bin/ at another path.
	remote := filepath.Join(t.TempDir(), "remote-ktstr")
	os.MkdirAll(remote, 0o755)
	if err := os.Symlink(filepath.Join(repoRoot(t), "scripts"), filepath.Join(remote, "scripts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binDir, filepath.Join(remote, "bin")); err != nil {
		t.Fatal(err)
	}
	r := runGauntlet(t, "--jobs", "2", "--vcpus", "4", "--sshlogin", login, "--remote-root", remote,
		"--scenario", testdata(t, "gauntlet-spin.json"), "--scenario", testdata(t, "gauntlet-yield.json"), "--kernel", "project="+k)
	if r.status != 0 {
		t.Fatalf("gauntlet over ssh: status %d, want 0\nstdout:\n%s\nstderr:\n%s\nsshd:\n%s", r.status, r.stdout, r.stderr, mustRead(t, log))
	}
	rep := readGauntletReport(t, r.out)
	if rep.Totals.Runs != 2 || rep.Totals.Pass != 2 {
		t.Fatalf("report %+v: want 2 runs passed", rep.Totals)
	}
	for _, c := range rep.Cells {
		run := filepath.Join(r.out, c.Results[0].Dir)
		// The command names the remote checkout: the run happened there.
		if cmd := mustRead(t, filepath.Join(run, "command")); !strings.Contains(cmd, remote+"/scripts/ktstr-run") {
			t.Errorf("%s: command %q does not name the remote checkout", c.ID, cmd)
		}
		if st, err := os.Stat(filepath.Join(run, "records")); err != nil || st.Size() == 0 {
			t.Errorf("%s: records did not come back (%v)", c.ID, err)
		}
	}
	if n := strings.Count(mustRead(t, log), "Accepted publickey"); n < 2 {
		t.Errorf("sshd accepted %d logins, want at least 2 (one per run)\n%s", n, mustRead(t, log))
	}
	// GNU parallel's remote work directories (--workdir ..., --cleanup)
	// are gone.
	home, _ := os.UserHomeDir()
	if ents, _ := filepath.Glob(filepath.Join(home, ".parallel", "tmp", "*", "runs")); len(ents) > 0 {
		t.Errorf("remote work directories left: %v", ents)
	}
	if left := leftovers(t, r); len(left) > 0 {
		t.Errorf("the gauntlet left behind:\n%s", strings.Join(left, "\n"))
	}
}
