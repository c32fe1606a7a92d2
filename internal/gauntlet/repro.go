package gauntlet

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Repro makes the self-contained re-run of a failed run in
// runDir/repro: a copy of the scheduler binary (bin/NAME), of every file
// its options --include (files/), and of the scenario's JSON
// (scenario.json), and a script, run, that boots the same cell again
// with one command.
// The kernel is named by its path and SHA-256, which the script checks
// (KTSTR_REPRO_KERNEL names a copy elsewhere). ktstrRun is the ktstr-run
// the script falls back on when none is in PATH and KTSTR_RUN is unset.
func (j Job) Repro(runDir, ktstrRun string) error {
	dir := filepath.Join(runDir, ReproDir)
	for _, d := range []string{dir, filepath.Join(dir, "bin"), filepath.Join(dir, "files")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(filepath.Join(runDir, ScenarioFile), filepath.Join(dir, ScenarioFile), 0o644); err != nil {
		return err
	}
	args := []string{"--topology", j.Topology}
	words := []string{`--scenario "$here/` + ScenarioFile + `"`}
	if j.Scheduler != "" {
		name := filepath.Base(j.Scheduler)
		if err := copyFile(j.Scheduler, filepath.Join(dir, "bin", name), 0o755); err != nil {
			return err
		}
		words = append(words, `--scheduler "$here/bin/`+Quote(name)+`"`)
	}
	for i, o := range j.Options {
		spec, ok := strings.CutPrefix(o, "--include=")
		if !ok {
			args = append(args, o)
			continue
		}
		src, dst, _ := strings.Cut(spec, ":")
		name := fmt.Sprintf("%d-%s", i, filepath.Base(src))
		if err := copyFile(src, filepath.Join(dir, "files", name), 0o755); err != nil {
			return err
		}
		if dst == "" {
			dst = src
		}
		words = append(words, `"--include=$here/files/"`+Quote(name+":"+dst))
	}
	var kernelSum string
	for _, c := range j.Verify {
		if c.What == "kernel" {
			kernelSum = c.SHA256
		}
	}
	script := fmt.Sprintf(`#!/bin/sh
# Runs gauntlet %[1]s cell %[2]s (repeat %[3]d) again: the scheduler
# and the scenario are the copies next to this script, the kernel is
# named by its path and checked against its SHA-256. Extra arguments go
# to ktstr-boot (--keep, --verbose). KTSTR_REPRO_KERNEL names a copy of
# the kernel elsewhere; KTSTR_RUN the ktstr-run script to use.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernel=${KTSTR_REPRO_KERNEL:-%[4]s}
want=%[5]s
sum=$(sha256sum "$kernel" | cut -d' ' -f1)
if [ "$sum" != "$want" ]; then
	echo "run: $kernel has SHA-256 $sum, the failed run booted $want (set KTSTR_REPRO_KERNEL to a copy of that kernel)" >&2
	exit 2
fi
run=${KTSTR_RUN:-$(command -v ktstr-run || echo %[6]s)}
exec "$run" --kernel "$kernel" %[7]s %[8]s "$@"
`, oneLine(j.Gauntlet), oneLine(j.Cell), j.Repeat, Quote(j.Kernel), Quote(kernelSum), Quote(ktstrRun), QuoteArgs(args), strings.Join(words, " "))
	return os.WriteFile(filepath.Join(dir, ReproScript), []byte(script), 0o755)
}

// oneLine keeps a name in a comment line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
