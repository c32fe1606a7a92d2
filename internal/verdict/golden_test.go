package verdict_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ktstr-go/ktstr/internal/verdict"
	"github.com/ktstr-go/ktstr/internal/verdict/verdicttest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// foldScenario folds a named scenario, consoles included, from its
// msgpack encoding.
func foldScenario(t testing.TB, name string, sc verdicttest.Scenario, jsonLines bool) verdict.Verdict {
	t.Helper()
	f := verdict.Fold(name, verdict.DefaultConfig(), bytes.NewReader(sc.Stream.Bytes(jsonLines)))
	files := make([]string, 0, len(sc.Consoles))
	for k := range sc.Consoles {
		files = append(files, k)
	}
	sort.Strings(files)
	for _, k := range files {
		if err := f.AddConsole(k, strings.NewReader(sc.Consoles[k])); err != nil {
			t.Fatal(err)
		}
	}
	return f.Verdict()
}

var goldenExt = map[string]string{"text": "txt", "json": "json", "junit": "xml", "tap": "tap"}

func render(t testing.TB, format string, rep verdict.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := verdict.Write(&b, format, rep, verdict.TextOptions{}); err != nil {
		t.Fatalf("Write(%s): %v", format, err)
	}
	return b.Bytes()
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// goldenReports are the reports the golden files pin: one per scenario,
// and an aggregate of three runs.
func goldenReports(t testing.TB) map[string]verdict.Report {
	reps := map[string]verdict.Report{}
	scs := verdicttest.Scenarios()
	for name, sc := range scs {
		reps[name] = verdict.Aggregate(name, []verdict.Verdict{foldScenario(t, name, sc, false)})
	}
	var runs []verdict.Verdict
	for _, name := range []string{"pass", "skip", "assertion", "infra"} {
		runs = append(runs, foldScenario(t, name, scs[name], false))
	}
	reps["aggregate"] = verdict.Aggregate("gauntlet", runs)
	return reps
}

func TestGolden(t *testing.T) {
	reps := goldenReports(t)
	names := make([]string, 0, len(reps))
	for n := range reps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, format := range verdict.Formats {
			t.Run(name+"/"+format, func(t *testing.T) {
				got := render(t, format, reps[name])
				checkGolden(t, filepath.Join("testdata", "golden", name+"."+goldenExt[format]), got)
			})
		}
	}
}
