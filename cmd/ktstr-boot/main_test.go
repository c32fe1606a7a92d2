package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ktstr-go/ktstr/internal/clitest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ktstr-boot": main, // main, so that host-mode runs can re-execute it as their workers
	})
}

// TestScripts runs the CLI contract in testdata/*.txtar: usage errors
// are one line on stderr and status 2, nothing on stdout; runs that cannot
// start are status 4. Booting for real is the e2e package's job.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Cmds:                map[string]func(ts *testscript.TestScript, neg bool, args []string){"status": clitest.Status, "closedstdout": clitest.ClosedStdout},
		Condition:           clitest.Condition,
	})
}
