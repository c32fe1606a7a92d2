package guest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeSCX is a sched_ext sysfs directory a test writes.
func fakeSCX(t *testing.T, state, ops, seq string) scxFS {
	t.Helper()
	d := t.TempDir()
	writeSCX(t, scxFS(d), state, ops, seq)
	return scxFS(d)
}

func writeSCX(t *testing.T, d scxFS, state, ops, seq string) {
	t.Helper()
	os.MkdirAll(filepath.Join(string(d), "root"), 0o755)
	// In a fixed order, state first, so a watcher polling meanwhile sees
	// the state change before the rest (a map's random order made the
	// loss read as "ops gone" now and then).
	for _, f := range []struct{ name, v string }{{"state", state}, {"root/ops", ops}, {"enable_seq", seq}} {
		name, v := f.name, f.v
		p := filepath.Join(string(d), name)
		if v == "" {
			os.Remove(p)
			continue
		}
		if err := os.WriteFile(p+".tmp", []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Rename(p+".tmp", p)
	}
}

func TestSCXRead(t *testing.T) {
	got, err := fakeSCX(t, "enabled", "simple", "3").read()
	if want := (scxSnap{State: "enabled", Ops: "simple", Seq: 3}); err != nil || got != want {
		t.Errorf("read = %+v, %v; want %+v", got, err, want)
	}
	got, err = fakeSCX(t, "disabled", "", "").read()
	if want := (scxSnap{State: "disabled", Seq: -1}); err != nil || got != want {
		t.Errorf("read = %+v, %v; want %+v", got, err, want)
	}
	if _, err := scxFS(t.TempDir()).read(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read of a kernel without sched_ext: %v, want ErrNotExist", err)
	}
}

func TestWaitAttached(t *testing.T) {
	c := &sclg{}
	s, err := startScheduler(c.send, "/bin/sh", []string{"-c", "echo loading BPF; echo still verifying >&2; exec sleep 60"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop(time.Second, "test over")
	s.seqBefore = 0 // what the fake sched_ext below said before it started
	c.waitFor(t, "still verifying")

	fs := fakeSCX(t, "disabled", "", "0")
	_, err = s.waitAttached(fs, time.Millisecond)
	var na *notAttachedError
	if !errors.As(err, &na) {
		t.Fatalf("waitAttached = %v, want a *notAttachedError", err)
	}
	want := `scheduler sh: not attached within 1ms, still initialising (its last output: "loading BPF" "still verifying"; sched_ext state disabled); raise --attach-timeout`
	if err.Error() != want && err.Error() != strings.Replace(want, `"loading BPF" "still verifying"`, `"still verifying" "loading BPF"`, 1) {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}

	writeSCX(t, fs, "enabled", "simple", "7")
	snap, err := s.waitAttached(fs, time.Minute)
	if d := cmp.Diff(scxSnap{State: "enabled", Ops: "simple", Seq: 7}, snap); err != nil || d != "" {
		t.Errorf("waitAttached on an attached scheduler: %v (-want +got):\n%s", err, d)
	}
}

// TestWaitAttachedWaitsForEnableSeq: the kernel turns the state
// "enabled" before it bumps enable_seq (last, in scx_ops_enable); an
// attach read in between has the previous attach's number, and a watch
// based on it would report a detach at the bump. waitAttached waits for
// the number to move past the one read before the scheduler started.
func TestWaitAttachedWaitsForEnableSeq(t *testing.T) {
	s, err := startScheduler((&sclg{}).send, "/bin/sh", []string{"-c", "exec sleep 60"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop(time.Second, "test over")
	s.seqBefore = 3
	fs := fakeSCX(t, "enabled", "simple", "3")
	var na *notAttachedError
	if _, err := s.waitAttached(fs, 100*time.Millisecond); !errors.As(err, &na) {
		t.Fatalf("waitAttached with enable_seq not yet bumped = %v, want a *notAttachedError", err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		os.WriteFile(filepath.Join(string(fs), "enable_seq"), []byte("4\n"), 0o644)
	}()
	snap, err := s.waitAttached(fs, time.Minute)
	if d := cmp.Diff(scxSnap{State: "enabled", Ops: "simple", Seq: 4}, snap); err != nil || d != "" {
		t.Errorf("waitAttached after the bump: %v (-want +got):\n%s", err, d)
	}
}

func TestWaitAttachedDied(t *testing.T) {
	s, err := startScheduler((&sclg{}).send, "/bin/sh", []string{"-c", "echo 'libbpf: failed to open system Kconfig' >&2; exit 1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.waitAttached(fakeSCX(t, "disabled", "", "0"), time.Minute); !errors.Is(err, errSchedDied) {
		t.Errorf("waitAttached = %v, want errSchedDied", err)
	}
}
