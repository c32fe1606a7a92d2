package boot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/control"
	"github.com/ktstr-go/ktstr/internal/workload"
	"github.com/ktstr-go/ktstr/lib/record"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// TestMain lets host-mode runs re-execute this test binary as their
// workers, as ktstr-boot's main does.
func TestMain(m *testing.M) {
	if workload.IsWorker(os.Args) {
		os.Exit(workload.WorkerMain(os.Args))
	}
	os.Exit(m.Run())
}

// hangGuard bounds a wait that used to hang, so that a regression fails
// with a message instead of hanging the suite.
const hangGuard = 60 * time.Second

// longHold is a scenario that would run for a minute: one spinning
// worker, held far longer than any test waits.
const longHold = `{"name":"long-hold","cgroups":[{"name":"a","workers":1,"work":{"type":"spin"}}],"steps":[{"hold_ms":600000}]}`

// lockedLog collects a run's log lines.
type lockedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l *lockedLog) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// startRun runs Run in the background and returns its result channel.
func startRun(t *testing.T, cfg Config) <-chan Result {
	t.Helper()
	out := make(chan Result, 1)
	go func() {
		res, err := Run(cfg)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		out <- res
	}()
	return out
}

// TestHostModeKillAfterDeadlineFlood: a guest that makes ktstr-dispatch
// send many watchdog deadlines (SCST/SCEN floods under --workload) must
// not block the control server: the kill that follows still stops the
// run at once. It used to hang: in host mode nothing read the deadline
// channel, so the 17th deadline blocked every later effect, the kill
// included, and Run never returned.
func TestHostModeKillAfterDeadlineFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("host-mode run: skipped with -short")
	}
	dir := filepath.Join(t.TempDir(), "run")
	var log lockedLog
	cfg := Config{VMM: "host", RunDir: dir, Timeout: 10 * time.Minute, Log: log.logf}
	cfg.Guest.ScenarioJSON = []byte(longHold)
	done := startRun(t, cfg)

	cl, err := control.Dial(filepath.Join(dir, ControlSock), 30*time.Second)
	if err != nil {
		t.Fatalf("dial control socket: %v", err)
	}
	defer cl.Close()
	const flood = 1000
	sent := make(chan error, 1)
	go func() {
		for i := range flood {
			r := &record.Record{Kind: record.KindEffect, Seq: int64(i), AtNS: int64(i), Effect: record.EffectWatchdogDeadline,
				DeadlineNS: uint64(i) + uint64(5*time.Minute)}
			if err := cl.Send(r); err != nil {
				sent <- err
				return
			}
		}
		sent <- cl.Send(&record.Record{Kind: record.KindEffect, Seq: flood, Effect: record.EffectKill, ExitCode: 9, HasExitCode: true})
	}()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("send: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatalf("the control socket stopped taking records: a handler is blocked")
	}
	select {
	case res := <-done:
		if res.Reason != wire.EndKilled || !strings.Contains(res.Detail, "SCDX exit code 9") {
			t.Errorf("Run = %v (%s), want killed by the SCDX kill", res.Reason, res.Detail)
		}
	case <-time.After(hangGuard):
		t.Fatalf("Run did not return within %v of a kill that followed %d watchdog deadlines: an effect handler blocked", hangGuard, flood)
	}
	if n := log.count("watchdog"); n > 3 {
		t.Errorf("%d watchdog lines on the log for %d deadlines, want a bounded few", n, flood)
	}
}
