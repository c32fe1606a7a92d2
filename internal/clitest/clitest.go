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
//	closedstdout PROG [ARGS...]
//
// which runs PROG (looked up in the script's PATH, in $WORK) with its
// standard output on a pipe whose reading end is already closed, as when
// the reader of a pipeline has gone (`| head -1`), and requires what a
// Unix filter does then: exit status 0 and nothing on stderr. A death by
// SIGPIPE fails.
func ClosedStdout(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: closedstdout PROG [ARGS...]")
	}
	prog := ""
	for _, d := range filepath.SplitList(ts.Getenv("PATH")) {
		if p := filepath.Join(d, args[0]); isExec(p) {
			prog = p
			break
		}
	}
	if prog == "" {
		ts.Fatalf("%s not found in the script's PATH", args[0])
	}
	r, w, err := os.Pipe()
	ts.Check(err)
	r.Close()
	defer w.Close()
	var stderr strings.Builder
	cmd := exec.Command(prog, args[1:]...)
	cmd.Dir = ts.Getenv("WORK")
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"), "HOME="+ts.Getenv("HOME"), "TMPDIR="+ts.Getenv("TMPDIR"))
	cmd.Stdout, cmd.Stderr = w, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		ts.Fatalf("%s with a closed stdout: %v (want status 0)\nstderr:\n%s", args[0], ee.ProcessState, stderr.String())
	case err != nil:
		ts.Fatalf("%s: %v", args[0], err)
	case stderr.Len() > 0:
		ts.Fatalf("%s with a closed stdout wrote to stderr:\n%s", args[0], stderr.String())
	}
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
