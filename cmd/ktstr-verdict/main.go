// Command ktstr-verdict folds ktstr-dispatch's records into a verdict and
// a report; its exit status is the verdict. See ktstr-verdict(1).
package main

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/gauntlet"
	"github.com/ktstr-go/ktstr/internal/verdict"
)

const name = "ktstr-verdict"

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := cli.App(name, "fold records into a verdict; the exit status is the verdict", stdout, stderr)
	app.UsageText = name + " [--format text|json|junit|tap] [--name NAME] [--console FILE]... [RECORDS...]\n" +
		name + " [--format text|json|junit|tap|html] GAUNTLET_DIR"
	app.DisableSliceFlagSeparator = true // file names and regexps may hold commas
	app.Flags = []ucli.Flag{
		&ucli.StringFlag{Name: "format", Value: "text", Usage: "report format: text, json, junit or tap (and html for a gauntlet's directory)"},
		&ucli.StringFlag{Name: "name", Usage: "name of the run (one input; default \"run\" for stdin, else the file name), or of the aggregate (several inputs; default \"ktstr\")"},
		&ucli.StringSliceFlag{Name: "console", Usage: "a console log of the run (ktstr-boot's console.log for COM1, com2.log for COM2); repeat for both; one run only"},
		&ucli.StringSliceFlag{Name: "splat", Usage: "add a kernel splat pattern `NAME=REGEXP` (tried before the built-in ones)"},
		&ucli.StringSliceFlag{Name: "no-splat", Usage: "drop the built-in splat pattern `NAME` (or \"all\")"},
		&ucli.StringFlag{Name: "splat-status", Value: "fail", Usage: "what a kernel splat makes the run: fail or inconclusive"},
		&ucli.StringFlag{Name: "noise", Usage: "ktstr-boot's host-noise measurement of the run (noise.json in its run directory); one run only"},
		&ucli.Float64Flag{Name: "host-contention", Value: verdict.DefaultHostContentionPct, Usage: "vCPU steal `percent` above which fairness, gap and latency failures are inconclusive (host contention); 0 turns it off"},
		&ucli.BoolFlag{Name: "require-end", Usage: "a stream without a VM end record (VEND) is an infrastructure error"},
		&ucli.IntFlag{Name: "tap-version", Value: verdict.TAPVersion13, Usage: "TAP `version` of --format tap: 13 (what prove and kselftest read) or 14"},
		&ucli.StringFlag{Name: "color", Value: "auto", Usage: "colour the text report: auto (when stdout is a terminal and NO_COLOR is unset), always or never"},
	}
	app.Action = func(c *ucli.Context) error {
		if dir, ok := gauntletDir(c.Args().Slice()); ok {
			return judgeGauntlet(c, dir, stdout)
		}
		format, tapVersion, cfg, err := reportFlags(c, verdict.Formats)
		if err != nil {
			return err
		}
		color, err := colorMode(c.String("color"), stdout, os.Getenv("NO_COLOR"))
		if err != nil {
			return err
		}
		inputs := c.Args().Slice()
		if len(inputs) == 0 {
			inputs = []string{"-"}
		}
		stdins := 0
		for _, in := range inputs {
			if in == "-" {
				stdins++
			}
		}
		if stdins > 1 {
			return cli.Usagef("standard input (-) given %d times", stdins)
		}
		consoles := c.StringSlice("console")
		if len(consoles) > 0 && len(inputs) > 1 {
			return cli.Usagef("--console belongs to one run; %d RECORDS inputs given", len(inputs))
		}
		if c.IsSet("noise") && len(inputs) > 1 {
			return cli.Usagef("--noise belongs to one run; %d RECORDS inputs given", len(inputs))
		}
		names := runNames(inputs)
		single := len(inputs) == 1
		if single && c.IsSet("name") {
			names[0] = c.String("name")
		}
		runs := make([]verdict.Verdict, len(inputs))
		for i, in := range inputs {
			f := verdict.FoldFile(names[i], in, stdin, cfg)
			for _, path := range consoles {
				f.AddConsoleFile(path)
			}
			if c.IsSet("noise") {
				f.AddNoiseFile(c.String("noise"))
			}
			runs[i] = f.Verdict()
		}
		repName := "ktstr"
		if single {
			repName = names[0]
		} else if c.IsSet("name") {
			repName = c.String("name")
		}
		rep := verdict.Aggregate(repName, runs)
		if err := writeReport(func() error {
			return verdict.Write(stdout, format, rep, verdict.TextOptions{Color: color, TAPVersion: tapVersion})
		}); err != nil {
			return err
		}
		if rep.ExitStatus != 0 {
			return cli.Silent(rep.ExitStatus)
		}
		return nil
	}
	return cli.Run(app, args, stderr)
}

// writeReport runs write. A reader that went away (| head) is no error:
// the write comes back as EPIPE instead of SIGPIPE, and the exit status
// is still the verdict.
func writeReport(write func() error) error {
	signal.Ignore(syscall.SIGPIPE)
	if err := write(); err != nil && !errors.Is(err, syscall.EPIPE) {
		return cli.Exitf(verdict.ExitInfra, "writing the report: %v", err)
	}
	return nil
}

// reportFlags reads --format (one of formats), --tap-version and the
// verdict's configuration.
func reportFlags(c *ucli.Context, formats []string) (format string, tapVersion int, cfg verdict.Config, err error) {
	format = c.String("format")
	if !contains(formats, format) {
		return "", 0, cfg, cli.Usagef("--format %q: want one of %s", format, strings.Join(formats, ", "))
	}
	tapVersion = c.Int("tap-version")
	if tapVersion != verdict.TAPVersion13 && tapVersion != verdict.TAPVersion14 {
		return "", 0, cfg, cli.Usagef("--tap-version %d: want 13 or 14", tapVersion)
	}
	cfg, err = config(c)
	return format, tapVersion, cfg, err
}

// gauntletDir finds a gauntlet's directory (it holds gauntlet.json)
// among the inputs.
func gauntletDir(inputs []string) (string, bool) {
	for _, in := range inputs {
		if st, err := os.Stat(filepath.Join(in, gauntlet.ManifestFile)); err == nil && st.Mode().IsRegular() {
			return in, true
		}
	}
	return "", false
}

// judgeGauntlet folds every run of a gauntlet again from its recordings
// and prints the aggregate; the exit status is the aggregate's.
func judgeGauntlet(c *ucli.Context, dir string, stdout io.Writer) error {
	if c.NArg() > 1 {
		return cli.Usagef("a gauntlet's directory is judged alone; %d inputs given", c.NArg())
	}
	format, tapVersion, cfg, err := reportFlags(c, gauntlet.Formats)
	if err != nil {
		return err
	}
	if len(c.StringSlice("console")) > 0 || c.IsSet("noise") {
		return cli.Usagef("--console and --noise belong to one run; a gauntlet's runs have theirs in their directories")
	}
	cfg.RequireEnd = true // every run's recording is from a closed region
	rep, err := gauntlet.Load(dir, cfg)
	if err != nil {
		return cli.Exitf(verdict.ExitInfra, "%v", err)
	}
	if c.IsSet("name") {
		rep.Name = c.String("name")
	}
	if err := writeReport(func() error { return gauntlet.Write(stdout, format, rep, tapVersion) }); err != nil {
		return err
	}
	if rep.ExitStatus != 0 {
		return cli.Silent(rep.ExitStatus)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func config(c *ucli.Context) (verdict.Config, error) {
	cfg := verdict.DefaultConfig()
	var extra []verdict.Splat
	for _, spec := range c.StringSlice("splat") {
		s, err := verdict.ParseSplat(spec)
		if err != nil {
			return cfg, cli.Usagef("--splat: %v", err)
		}
		extra = append(extra, s)
	}
	pats, err := verdict.SelectSplats(extra, c.StringSlice("no-splat"))
	if err != nil {
		return cfg, cli.Usagef("--no-splat: %v", err)
	}
	cfg.Splats = pats
	switch c.String("splat-status") {
	case "fail":
		cfg.SplatStatus = verdict.StatusFail
	case "inconclusive":
		cfg.SplatStatus = verdict.StatusInconclusive
	default:
		return cfg, cli.Usagef("--splat-status %q: want fail or inconclusive", c.String("splat-status"))
	}
	cfg.RequireEnd = c.Bool("require-end")
	cfg.HostContentionPct = c.Float64("host-contention")
	if p := cfg.HostContentionPct; !(p >= 0 && p <= 100) {
		return cfg, cli.Usagef("--host-contention %v: want 0 to 100 (percent)", p)
	}
	return cfg, nil
}

// colorMode decides whether the text report is coloured.
func colorMode(mode string, stdout io.Writer, noColor string) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		f, ok := stdout.(*os.File)
		return ok && noColor == "" && isTerminal(f), nil
	}
	return false, cli.Usagef("--color %q: want auto, always or never", mode)
}

// runNames names each input: "run" for stdin, else the file's base name
// without its extension, or the whole path where base names collide.
func runNames(inputs []string) []string {
	names := make([]string, len(inputs))
	seen := map[string]int{}
	for i, in := range inputs {
		if in == "-" {
			names[i] = "run"
		} else {
			base := filepath.Base(in)
			names[i] = strings.TrimSuffix(base, filepath.Ext(base))
		}
		seen[names[i]]++
	}
	for i, in := range inputs {
		if seen[names[i]] > 1 && in != "-" {
			names[i] = filepath.Clean(in)
		}
	}
	return names
}
