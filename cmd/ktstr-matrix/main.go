// Command ktstr-matrix is scripts/ktstr-gauntlet's planner: it expands a
// gauntlet's matrix into its cells and runs (internal/gauntlet), and
// reads back one run's job for the shell. See ktstr-matrix(1).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/boot"
	"github.com/ktstr-go/ktstr/internal/cache"
	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/gauntlet"
	"github.com/ktstr-go/ktstr/internal/scenario"
	"github.com/ktstr-go/ktstr/internal/topology"
)

const name = "ktstr-matrix"

// Exit statuses besides 0, 1 and 2.
const exitCheck = 4 // a job's file is not the planned one, or I/O failed

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := cli.App(name, "plan a gauntlet's matrix and read its jobs (scripts/ktstr-gauntlet's helper)", stdout, stderr)
	app.UsageText = name + " plan|args|check|command|repro ..."
	app.DisableSliceFlagSeparator = true // topologies and paths hold commas
	app.Commands = []*ucli.Command{
		{
			Name:      "plan",
			Usage:     "expand the matrix into DIR (or list it with --list)",
			UsageText: name + " plan (--out DIR | --list) [--matrix FILE] [--scenario S]... [--topology T]... [--scheduler SPEC]... [--kernel K]... [--repeat N] [--shard I/N] [--vcpus N] [--jobs N] [--name NAME]",
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "out", Usage: "the gauntlet's `dir`ectory to make (new, or empty)"},
				&ucli.BoolFlag{Name: "list", Usage: "print the cells (run or skip, with the reason) and make nothing"},
				&ucli.StringFlag{Name: "matrix", Usage: "matrix `file` (axes the flags do not give come from it)"},
				&ucli.StringSliceFlag{Name: "scenario", Usage: "canned scenario `name|file` (repeat; default steady)"},
				&ucli.StringSliceFlag{Name: "topology", Usage: "machine `shape`, N,L,C,T or a preset (repeat; default 1,1,2,1)"},
				&ucli.StringSliceFlag{Name: "scheduler", Usage: "`spec`: eevdf, a path, NAME=PATH or a name in the schedulers cache, then ktstr-boot options (repeat; default eevdf)"},
				&ucli.StringSliceFlag{Name: "kernel", Usage: "`kernel`: project, debian, NAME=PATH or a path (repeat; default ktstr-boot's)"},
				&ucli.StringFlag{Name: "repeat", Usage: "runs per cell, `n` (default 1, or the matrix file's)"},
				&ucli.StringFlag{Name: "shard", Usage: "run only shard `I/N` of the matrix"},
				&ucli.IntFlag{Name: "vcpus", Value: runtime.NumCPU(), Usage: "vCPU `budget`: the most vCPUs running at once (default: this host's CPUs)"},
				&ucli.IntFlag{Name: "jobs", Value: 1, Usage: "`n` runs at once at most (lowered to fit the vCPU budget)"},
				&ucli.StringFlag{Name: "name", Value: "gauntlet", Usage: "the gauntlet's `name` in its reports"},
			},
			Action: plan(stdout),
		},
		{Name: "args", Usage: "print JOB's ktstr-boot options, quoted for sh", ArgsUsage: "JOB", Action: withJob(func(j gauntlet.Job, _ *ucli.Context) error {
			_, err := fmt.Fprintln(stdout, gauntlet.QuoteArgs(j.Args()))
			return err
		})},
		{Name: "check", Usage: "check that JOB's kernel, scheduler and scenario file are the planned ones (status 4 if not)", ArgsUsage: "JOB", Action: withJob(func(j gauntlet.Job, _ *ucli.Context) error {
			if err := j.Check(); err != nil {
				return cli.Exitf(exitCheck, "%v", err)
			}
			return nil
		})},
		{
			Name: "command", Usage: "print the exact command that runs JOB's cell again", ArgsUsage: "JOB",
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "ktstr-run", Value: "ktstr-run", Usage: "the ktstr-run `script`"},
				&ucli.StringFlag{Name: "bin", Value: "bin", Usage: "the tools' `dir`ectory"},
			},
			Action: withJob(func(j gauntlet.Job, c *ucli.Context) error {
				_, err := fmt.Fprintln(stdout, j.Command(c.String("ktstr-run"), c.String("bin")))
				return err
			}),
		},
		{
			Name: "repro", Usage: "make JOB's self-contained re-run in its directory's repro/", ArgsUsage: "JOB",
			Flags: []ucli.Flag{&ucli.StringFlag{Name: "ktstr-run", Value: "ktstr-run", Usage: "the ktstr-run `script` the re-run falls back on"}},
			Action: withJob(func(j gauntlet.Job, c *ucli.Context) error {
				if err := j.Repro(filepath.Dir(c.Args().First()), c.String("ktstr-run")); err != nil {
					return cli.Exitf(exitCheck, "repro: %v", err)
				}
				return nil
			}),
		},
	}
	app.Action = func(c *ucli.Context) error {
		if c.NArg() == 0 {
			return cli.Usagef("no command: want plan, args, check, command or repro")
		}
		return cli.Usagef("unknown command %q: want plan, args, check, command or repro", c.Args().First())
	}
	return cli.Run(app, args, stderr)
}

// withJob reads the one JOB argument.
func withJob(f func(gauntlet.Job, *ucli.Context) error) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		if c.NArg() != 1 {
			return cli.Usagef("%s: want one JOB (a run's job.json)", c.Command.Name)
		}
		j, err := gauntlet.ReadJob(c.Args().First())
		if err != nil {
			return cli.Exitf(exitCheck, "%v", err)
		}
		return f(j, c)
	}
}

func plan(stdout io.Writer) ucli.ActionFunc {
	return func(c *ucli.Context) error {
		if c.NArg() > 0 {
			return cli.Usagef("plan: unexpected argument %q", c.Args().First())
		}
		out, list := c.String("out"), c.Bool("list")
		if (out == "") == !list {
			return cli.Usagef("plan: want --out DIR or --list")
		}
		var spec gauntlet.Spec
		if f := c.String("matrix"); f != "" {
			fh, err := os.Open(f)
			if err != nil {
				return cli.Usagef("--matrix: %v", err)
			}
			spec, err = gauntlet.ParseMatrix(fh)
			fh.Close()
			if err != nil {
				return cli.Usagef("--matrix %s: %v", f, err)
			}
		}
		flags := gauntlet.Spec{Scenarios: c.StringSlice("scenario"), Topologies: c.StringSlice("topology"),
			Schedulers: c.StringSlice("scheduler"), Kernels: c.StringSlice("kernel")}
		if c.IsSet("repeat") {
			n, err := gauntlet.ParseRepeat(c.String("repeat"))
			if err != nil {
				return cli.Usagef("--repeat: %v", err)
			}
			flags.Repeat = n
		}
		spec = spec.Override(flags)
		opt := gauntlet.Options{Name: c.String("name"), VCPUs: c.Int("vcpus"), Jobs: c.Int("jobs")}
		if opt.VCPUs < 1 || opt.VCPUs > 1<<16 {
			return cli.Usagef("--vcpus %d: want 1 to %d", opt.VCPUs, 1<<16)
		}
		if opt.Jobs < 1 || opt.Jobs > 1<<16 {
			return cli.Usagef("--jobs %d: want 1 to %d", opt.Jobs, 1<<16)
		}
		if s := c.String("shard"); s != "" {
			sh, err := gauntlet.ParseShard(s)
			if err != nil {
				return cli.Usagef("--shard: %v", err)
			}
			opt.Shard = sh
		}
		dir, err := cache.Dir()
		if err != nil && !errors.Is(err, cache.ErrNoCache) {
			return cli.Usagef("%v", err)
		}
		env := gauntlet.Env{
			CacheDir:      dir,
			DefaultKernel: boot.DefaultKernel,
			LoadScenario:  func(a string) (*scenario.Scenario, []byte, error) { return scenario.Load(a) },
			CheckSchedExt: boot.CheckSchedExt,
			CheckTopology: func(t topology.Topology) error { return boot.CheckTopology("auto", t) },
		}
		m, err := gauntlet.Plan(spec, env, opt)
		if err != nil {
			return cli.Usagef("%v", err)
		}
		if list {
			for _, cell := range m.Cells {
				if cell.Skip != "" {
					fmt.Fprintf(stdout, "skip %s: %s\n", cell.ID, cell.Skip)
				} else {
					fmt.Fprintf(stdout, "run  %s (%d vCPUs, %d runs)\n", cell.ID, cell.VCPUs, len(cell.Runs))
				}
			}
			return nil
		}
		if err := m.Write(out); err != nil {
			return cli.Exitf(exitCheck, "%v", err)
		}
		skipped := 0
		for _, cell := range m.Cells {
			if cell.Skip != "" {
				skipped++
			}
		}
		_, err = fmt.Fprintf(stdout, "runs=%d jobs=%d cells=%d skipped=%d matrix=%d\n", len(m.Runs()), m.Jobs, len(m.Cells), skipped, m.MatrixCells)
		return err
	}
}
