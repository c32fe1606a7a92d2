// Package clitest holds what the commands' testscript CLI tests share.
package clitest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"
)

// Status is the testscript command
//
//	status N PROG [ARGS...]
//
// which runs PROG like exec (with the script's stdin, saving stdout and
// stderr) and requires exit status N.
func Status(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// Condition adds the testscript conditions [root] (the script runs as
// root: it can give files to other users) and [exists:PATH] (PATH exists
// on this machine).
func Condition(cond string) (bool, error) {
	if p, ok := strings.CutPrefix(cond, "exists:"); ok {
		_, err := os.Stat(p)
		return err == nil, nil
	}
	switch cond {
	case "root":
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// ClosedStdout is the testscript command
//
//	closedstdout N PROG [ARGS...]
//
// which runs PROG with its standard output a pipe whose reader has
// already gone away (a "| head" that finished), saving its stderr, and
// requires that it exits with status N: not killed by SIGPIPE, whatever
// it had to write.
func ClosedStdout(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: closedstdout N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	prog := args[1]
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		if p := filepath.Join(dir, args[1]); fileExists(p) {
			prog = p
			break
		}
	}
	r, w, err := os.Pipe()
	ts.Check(err)
	r.Close() // the reader is gone before the first write
	defer w.Close()
	cmd := exec.Command(prog, args[2:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = w, ts.Stderr()
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ts.Fatalf("%s was killed by %v, want exit status %d", args[1], ws.Signal(), want)
		}
	default:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got := cmd.ProcessState.ExitCode(); got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
