package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ktstr-go/ktstr/internal/drain"
	"github.com/ktstr-go/ktstr/lib/shm"
	"github.com/ktstr-go/ktstr/lib/wire"
)

// TestExactlyOnceAcrossRestarts runs a producer process and a series of
// real ktstr-drain processes on one region file. Frames have random sizes
// up to exactly the 64 KiB ring, so the ring wraps and fills; each drain
// is stopped with SIGTERM at a random moment (while it copies, while it
// is blocked writing to a slow reader, while it waits) and a new one is
// started. The concatenated output must be the produced stream byte for
// byte, then the trailer.
//
// SIGTERM, not SIGKILL: a SIGKILL that lands after write(2) accepted bytes
// and before the drain stored the new read position makes the next drain
// repeat those bytes (see ktstr-drain(1)). That window cannot be closed
// from user space, so a SIGKILL test could only pass by luck.
func TestExactlyOnceAcrossRestarts(t *testing.T) {
	seeds, frames := []uint64{1, 2, 3}, 3000
	if testing.Short() || raceEnabled {
		seeds, frames = seeds[:1], 600
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			exactlyOnce(t, seed, frames)
		})
	}
}

func exactlyOnce(t *testing.T, seed uint64, frames int) {
	dir := t.TempDir()
	region := filepath.Join(dir, "region")
	sent := filepath.Join(dir, "sent")
	prodErr, err := os.Create(filepath.Join(dir, "shmprod.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer prodErr.Close()
	prod := exec.Command("shmprod", "-size", "131072", "-frames", strconv.Itoa(frames),
		"-seed", strconv.FormatUint(seed, 10), "-close", "poweroff", "-expect", sent, region)
	prod.Stderr = prodErr
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	prodDone := make(chan error, 1)
	go func() { prodDone <- prod.Wait() }()
	defer prod.Process.Kill()

	nonce := regionNonce(t, region)
	trailer := drain.Trailer(nonce, 0, 0, shm.End{Reason: uint32(wire.EndPoweroff), Elapsed: time.Second}, true)
	rng := rand.New(rand.NewPCG(seed, 99))
	var out bytes.Buffer
	runs, stopped := 0, 0
	deadline := time.Now().Add(3 * time.Minute)
	for !bytes.HasSuffix(out.Bytes(), trailer) {
		if time.Now().After(deadline) {
			t.Fatalf("no end after %d drains, %d bytes out", runs, out.Len())
		}
		runs++
		var errb bytes.Buffer
		cmd := exec.Command("ktstr-drain", "--follow", "--wait", "30s", region)
		cmd.Stderr = &errb
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A slow reader: odd-sized reads with pauses, so the drain is
		// often blocked in write when the signal comes.
		readSeed := rng.Uint64()
		readDone, first := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(readDone)
			rr := rand.New(rand.NewPCG(readSeed, 1))
			buf := make([]byte, 70000)
			for started := false; ; {
				if rr.IntN(4) == 0 {
					time.Sleep(time.Duration(rr.IntN(3000)) * time.Microsecond)
				}
				n, err := pipe.Read(buf[:1+rr.IntN(len(buf))])
				out.Write(buf[:n])
				if n > 0 && !started {
					started = true
					close(first)
				}
				if err != nil {
					return
				}
			}
		}()
		// One drain in five is signalled at any moment from its start
		// (starting up, waiting for the region, copying); the others at a
		// random moment after their first bytes, so that every drain
		// makes progress however slowly processes start.
		signal := func() { cmd.Process.Signal(syscall.SIGTERM) }
		var timer *time.Timer
		if rng.IntN(5) == 0 {
			timer = time.AfterFunc(time.Duration(rng.IntN(60000))*time.Microsecond, signal)
		} else {
			delay := time.Duration(rng.IntN(15000)) * time.Microsecond
			select {
			case <-first:
				timer = time.AfterFunc(delay, signal)
			case <-readDone:
				timer = time.AfterFunc(time.Hour, signal)
			}
		}
		<-readDone
		err = cmd.Wait()
		if !timer.Stop() {
			stopped++
		}
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM:
			// Killed before it installed its handler: it had not
			// mapped the ring for writing yet.
		default:
			t.Fatalf("drain #%d: %v: %s", runs, err, errb.String())
		}
		if errb.Len() > 0 {
			t.Errorf("drain #%d stderr: %s", runs, errb.String())
		}
		select {
		case err := <-prodDone:
			if err != nil {
				msg, _ := os.ReadFile(prodErr.Name())
				t.Fatalf("producer: %v: %s", err, msg)
			}
			prodDone <- nil
		default:
		}
	}
	want, err := os.ReadFile(sent)
	if err != nil {
		t.Fatal(err)
	}
	want = append(append(drain.Hello(nonce), want...), trailer...)
	if !bytes.Equal(out.Bytes(), want) {
		i := 0
		for i < min(out.Len(), len(want)) && out.Bytes()[i] == want[i] {
			i++
		}
		t.Fatalf("after %d drains: %d bytes out, want %d; first difference at byte %d", runs, out.Len(), len(want), i)
	}
	t.Logf("%d frames, %d bytes through a %d-byte ring by %d drains, %d of them stopped by SIGTERM",
		frames, len(want)-len(trailer)-wire.HeaderSize-wire.HelloSize, 64<<10, runs, stopped)
}

// TestSIGTERMWhileBlocked: a drain blocked writing to a reader that does
// not read stops after that write when SIGTERM comes, and a second SIGTERM
// ends it at once.
func TestSIGTERMWhileBlocked(t *testing.T) {
	dir := t.TempDir()
	region := filepath.Join(dir, "region")
	if out, err := exec.Command("shmprod", "-size", "16777216", "-frames", "1000", "-fixed", "4080", region).CombinedOutput(); err != nil {
		t.Fatalf("shmprod: %v: %s", err, out)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command("ktstr-drain", "--follow", region)
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Once the first byte arrives the drain is copying (its handler is
	// installed); give it time to fill the pipe and block. Then signal
	// until it dies: the first SIGTERM asks for a stop after the current
	// write, which cannot finish; a later one kills.
	var b [1]byte
	if _, err := pr.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for i := 0; ; i++ {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-exited:
		case <-time.After(100 * time.Millisecond):
			if i < 100 {
				continue
			}
			cmd.Process.Kill()
			err = <-exited
		}
		break
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("drain signalled while blocked: %v, want killed by SIGTERM", err)
	}
	if got, _ := io.ReadAll(pr); len(got) < 64<<10-1 {
		t.Errorf("the drain wrote %d bytes before it was killed, want at least a full pipe", len(got)+1)
	}
}

// regionNonce waits for the region the producer creates and returns its
// nonce, which the drains put in HELO and the trailer.
func regionNonce(t *testing.T, path string) wire.Nonce {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := shm.Open(path)
		if err == nil {
			defer r.Close()
			return wire.Nonce(r.Nonce())
		}
		if time.Now().After(deadline) {
			t.Fatalf("region never appeared: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
