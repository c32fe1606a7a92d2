package main

import (
	"os"
	"testing"

	"github.com/ktstr-go/ktstr/internal/clitest"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain installs the test binary as ktstr-drain and as the helper
// commands in $PATH, for the scripts and for the cross-process tests.
//
//	ktstr-drain  the real command (run)
//	shmprod      a producer: creates or opens a region and writes frames (helpers_test.go)
//	framelist    prints a frame stream one line per frame
//	latread      reads timestamp frames and prints latency percentiles
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ktstr-drain": func() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) },
		"shmprod":     func() { os.Exit(shmprod(os.Args[1:])) },
		"framelist":   func() { os.Exit(framelist(os.Stdin, os.Stdout)) },
		"latread":     func() { os.Exit(latread(os.Stdin, os.Stdout)) },
	})
}

// TestScripts runs the CLI contract in testdata/script/*.txtar. Besides
// the standard commands the scripts have
//
//	status N PROG ARGS...   run PROG like exec and require exit status N
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status": clitest.Status,
		},
	})
}
