// Command ktstr-compare compares two sets of ktstr runs, A and B, metric
// by metric, with honest statistics (internal/compare), and exits 1 when
// B regressed. See ktstr-compare(1).
package main

import (
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/ktstr-go/ktstr/internal/cli"
	"github.com/ktstr-go/ktstr/internal/compare"
)

const name = "ktstr-compare"

// Exit statuses besides 0 (no regression), 1 (a regression) and 2 (usage).
const exitCannot = 3 // unreadable input, mismatched runs, not enough runs

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Everything after the first "--" is side B; the flags and side A
	// come before it.
	var bPaths []string
	sep := slices.Index(args, "--")
	if sep > 0 {
		bPaths = slices.Clone(args[sep+1:])
		args = args[:sep]
	}
	app := cli.App(name, "compare runs A with runs B, metric by metric; exit 1 when B regressed", stdout, stderr)
	app.UsageText = name + " [options] A... -- B...\n\n" +
		"A and B: verdict JSON reports (ktstr-verdict --format json), record streams, or KTSTR_SAVE directories"
	app.DisableSliceFlagSeparator = true
	app.Flags = []ucli.Flag{
		&ucli.StringFlag{Name: "format", Value: "text", Usage: "output on stdout: text, json, markdown or svg"},
		&ucli.StringFlag{Name: "json", Usage: "also write the JSON to `file`"},
		&ucli.StringFlag{Name: "markdown", Usage: "also write the Markdown to `file`"},
		&ucli.StringFlag{Name: "svg", Usage: "also write the picture (SVG) to `file`"},
		&ucli.Float64Flag{Name: "alpha", Value: 0.05, Usage: "the rank test's significance `level`"},
		&ucli.Float64Flag{Name: "confidence", Value: 0.95, Usage: "the intervals' confidence `level`"},
		&ucli.StringSliceFlag{Name: "threshold", Usage: "`METRIC=PERCENT`: the change below which a significant difference is no change (repeat)"},
		&ucli.BoolFlag{Name: "cgroups", Usage: "compare each cgroup's figures too"},
		&ucli.StringFlag{Name: "metrics", Usage: "compare only the metrics whose name or SCOPE/NAME matches `regexp`"},
		&ucli.StringFlag{Name: "label-a", Usage: "side A's `name` (default: the scheduler its runs ran)"},
		&ucli.StringFlag{Name: "label-b", Usage: "side B's `name`"},
		&ucli.BoolFlag{Name: "include-failed", Usage: "use the results of runs that did not pass"},
		&ucli.StringFlag{Name: "gate", Value: compare.DefaultGate.String(), Usage: "the metrics (SCOPE/NAME `regexp`) that can fail the comparison, their p-values Holm-adjusted together"},
	}
	app.Action = func(c *ucli.Context) error {
		aPaths := c.Args().Slice()
		if sep < 0 {
			return cli.Usagef("no \"--\" between the A and B inputs")
		}
		if len(aPaths) == 0 || len(bPaths) == 0 {
			return cli.Usagef("want inputs on both sides of \"--\" (A: %d, B: %d)", len(aPaths), len(bPaths))
		}
		format := c.String("format")
		if !slices.Contains(compare.Formats, format) {
			return cli.Usagef("--format %q: want one of %s", format, strings.Join(compare.Formats, ", "))
		}
		opt := compare.Options{Alpha: c.Float64("alpha"), Confidence: c.Float64("confidence"), Cgroups: c.Bool("cgroups"),
			LabelA: c.String("label-a"), LabelB: c.String("label-b"), IncludeFailed: c.Bool("include-failed"),
			Thresholds: map[string]float64{}}
		for _, t := range c.StringSlice("threshold") {
			k, v, ok := strings.Cut(t, "=")
			pct, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if _, known := compareDef(k); !ok || err != nil || !(pct >= 0) || !known {
				return cli.Usagef("--threshold %q: want METRIC=PERCENT with METRIC one of %s", t, strings.Join(metricNames(), ", "))
			}
			opt.Thresholds[k] = pct
		}
		var err error
		if re := c.String("metrics"); re != "" {
			if opt.Metrics, err = regexp.Compile(re); err != nil {
				return cli.Usagef("--metrics: %v", err)
			}
		}
		if opt.Gate, err = regexp.Compile(c.String("gate")); err != nil {
			return cli.Usagef("--gate: %v", err)
		}
		if !(opt.Alpha > 0 && opt.Alpha < 1) || !(opt.Confidence > 0 && opt.Confidence < 1) {
			return cli.Usagef("--alpha and --confidence must be within (0, 1)")
		}
		a, err := load(aPaths)
		if err != nil {
			return err
		}
		b, err := load(bPaths)
		if err != nil {
			return err
		}
		res, err := compare.Compare(a, b, opt)
		if err != nil {
			return cli.Exitf(exitCannot, "%v", err)
		}
		for _, out := range []struct{ flag, format string }{{"json", "json"}, {"markdown", "markdown"}, {"svg", "svg"}} {
			if path := c.String(out.flag); path != "" {
				if err := writeFile(path, out.format, res); err != nil {
					return cli.Exitf(exitCannot, "--%s: %v", out.flag, err)
				}
			}
		}
		if err := compare.Write(stdout, format, res); err != nil && !errors.Is(err, os.ErrClosed) {
			return cli.Exitf(exitCannot, "writing the report: %v", err)
		}
		if res.Regressions > 0 {
			return cli.Silent(cli.ExitFail)
		}
		return nil
	}
	return cli.Run(app, args, stderr)
}

func load(paths []string) ([]compare.Run, error) {
	var runs []compare.Run
	for _, p := range paths {
		rs, err := compare.Load(p)
		if err != nil {
			return nil, cli.Exitf(exitCannot, "%v", err)
		}
		runs = append(runs, rs...)
	}
	return runs, nil
}

func writeFile(path, format string, res *compare.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := compare.Write(f, format, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func compareDef(name string) (compare.Def, bool) {
	for _, d := range compare.Defs {
		if d.Name == name {
			return d, true
		}
	}
	return compare.Def{}, false
}

func metricNames() []string {
	var out []string
	for _, d := range compare.Defs {
		out = append(out, d.Name)
	}
	return out
}
