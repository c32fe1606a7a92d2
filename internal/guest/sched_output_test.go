package guest

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktstr-go/ktstr/internal/schedlog"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// sclg collects SCLG frames.
type sclg struct {
	mu     sync.Mutex
	frames []string
}

func (c *sclg) send(t wire.Type, p []byte) {
	if t != wire.TypeSchedLog {
		panic(fmt.Sprintf("sent %v", t))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames = append(c.frames, string(p))
}

func (c *sclg) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.frames, "")
}

// waitFor waits until the forwarded text contains s.
func (c *sclg) waitFor(t *testing.T, s string) {
	t.Helper()
	for range 5000 {
		if strings.Contains(c.text(), s) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%q never forwarded; got:\n%s", s, c.text())
}

// tick is a clock that advances one millisecond per reading.
func tick() func() time.Duration {
	var mu sync.Mutex
	var t time.Duration
	return func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		t += time.Millisecond
		return t
	}
}

func TestSchedOutputLabelsAndOrder(t *testing.T) {
	c := &sclg{}
	o := newSchedOutput(c.send, tick())
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	o.follow(schedlog.Stdout, outR)
	o.follow(schedlog.Stderr, errR)
	io.WriteString(outW, "loading\n")
	c.waitFor(t, "loading")
	io.WriteString(errW, "libbpf: failed\r\n")
	c.waitFor(t, "libbpf")
	io.WriteString(outW, "bad \xff byte\nno newline")
	c.waitFor(t, "byte")
	if got, want := o.recentOutput(), []string{"loading", "libbpf: failed", "bad \uFFFD byte", "no newline"}; !cmp.Equal(got, want) {
		t.Errorf("recentOutput = %q, want %q", got, want)
	}
	o.note("sending SIGINT")
	outW.Close()
	errW.Close()
	o.close(time.Minute)
	<-o.done
	want := schedlog.Start + "\n" +
		"[    0.001000] stdout: loading\n" +
		"[    0.002000] stderr: libbpf: failed\n" +
		"[    0.003000] stdout: bad \uFFFD byte\n" +
		"[    0.004000] ktstr: sending SIGINT\n" +
		"[    0.005000] stdout: no newline\n" +
		schedlog.End + "\n"
	if got := c.text(); got != want {
		t.Errorf("forwarded:\n%s\nwant:\n%s", got, want)
	}
	o.note("after the end")
	if strings.Contains(c.text(), "after the end") {
		t.Error("a line after close was forwarded")
	}
}

func TestSchedOutputLongLineCut(t *testing.T) {
	c := &sclg{}
	o := newSchedOutput(c.send, tick())
	o.follow(schedlog.Stderr, io.NopCloser(strings.NewReader(strings.Repeat("x", 3*maxOutLine)+"\nnext\n")))
	o.close(time.Minute)
	lines := strings.Split(c.text(), "\n")
	if len(lines) != 5 || lines[1] != "[    0.001000] stderr: "+strings.Repeat("x", maxOutLine)+" [line cut]" || lines[2] != "[    0.001000] stderr: next" {
		t.Errorf("forwarded %d lines:\n%.300s", len(lines), c.text())
	}
}

// Over the budget, the agent keeps the last keptLines and says how many
// it dropped; the first forwardLines went out as they came.
func TestSchedOutputBudget(t *testing.T) {
	c := &sclg{}
	o := newSchedOutput(c.send, func() time.Duration { return time.Second })
	const extra = 7
	var in strings.Builder
	for i := range forwardLines + keptLines + extra {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	o.follow(schedlog.Stdout, io.NopCloser(strings.NewReader(in.String())))
	o.close(time.Minute)
	lines := strings.Split(strings.TrimSuffix(c.text(), "\n"), "\n")
	if got, want := len(lines), 1+forwardLines+1+keptLines+1; got != want {
		t.Fatalf("%d lines forwarded, want %d", got, want)
	}
	if got, want := lines[forwardLines], "[    1.000000] stdout: line 9999"; got != want {
		t.Errorf("last live line %q, want %q", got, want)
	}
	note := lines[forwardLines+1]
	if want := fmt.Sprintf("ktstr: %d lines of output dropped", extra); !strings.Contains(note, want) {
		t.Errorf("note %q lacks %q", note, want)
	}
	if got, want := lines[forwardLines+2], fmt.Sprintf("[    1.000000] stdout: line %d", forwardLines+extra); got != want {
		t.Errorf("first kept line %q, want %q", got, want)
	}
	if got, want := lines[len(lines)-2], fmt.Sprintf("[    1.000000] stdout: line %d", forwardLines+keptLines+extra-1); got != want {
		t.Errorf("last kept line %q, want %q", got, want)
	}
}

// A stream that never ends (a child holds it open) does not hold the
// end marker back past the grace.
func TestSchedOutputCloseGrace(t *testing.T) {
	c := &sclg{}
	o := newSchedOutput(c.send, tick())
	r, w := io.Pipe()
	defer w.Close()
	o.follow(schedlog.Stdout, r)
	o.close(time.Millisecond)
	<-o.done
	if got := c.text(); !strings.Contains(got, "did not end within") || !strings.HasSuffix(got, schedlog.End+"\n") {
		t.Errorf("forwarded:\n%s", got)
	}
}

// A real scheduler process: stdout is a terminal, stderr is not, and
// both arrive labelled.
func TestStartSchedulerStreams(t *testing.T) {
	c := &sclg{}
	s, err := startScheduler(c.send, "/bin/sh", []string{"-c", `[ -t 1 ] && echo tty || echo notty; [ -t 2 ] && echo tty >&2 || echo notty >&2; exit 3`})
	if err != nil {
		t.Fatal(err)
	}
	<-s.died
	<-s.out.done
	if s.code != 3 {
		t.Errorf("exit code %d, want 3", s.code)
	}
	got := c.text()
	for _, want := range []string{"] stdout: tty\n", "] stderr: notty\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
