package compare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ktstr-go/ktstr/internal/verdict"
	"github.com/ktstr-go/ktstr/lib/wire/payload"
)

// Run is one run read from an input: its name, status and result.
type Run struct {
	Name   string                `json:"name"`
	Source string                `json:"source"` // the file it came from
	Status verdict.Status        `json:"status"`
	Result *payload.AssertResult `json:"-"`
}

// maxReport bounds a verdict JSON report read whole.
const maxReport = 256 << 20

// Load reads the runs of one input: a verdict JSON report
// (ktstr-verdict --format json: every run in it), a record stream
// (ktstr-dispatch's output, msgpack or JSON lines: one run, folded as
// ktstr-verdict would with its default configuration), or a directory
// ktstr-run's KTSTR_SAVE made (folded as ktstr-run's replay does: its
// records with its consoles and host-noise measurement, the VM's end
// required, so that a run the host starved is inconclusive, not failed).
func Load(path string) ([]Run, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		rec := filepath.Join(path, "records")
		if _, err := os.Stat(rec); err != nil {
			return nil, fmt.Errorf("%s: a directory without a records file (KTSTR_SAVE's layout)", path)
		}
		return foldSaved(path, rec)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if isReport(head) {
		b, err := io.ReadAll(io.LimitReader(io.MultiReader(bytes.NewReader(head), f), maxReport+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(b) > maxReport {
			return nil, fmt.Errorf("%s: a report larger than %d bytes", path, maxReport)
		}
		return parseReport(path, b)
	}
	return foldRecords(filepath.Base(path), path)
}

// isReport tells a verdict report (one JSON object whose first key is
// "schema") from a JSON-lines record stream (whose first key is "v").
func isReport(head []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(head))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	t, err := dec.Token()
	return err == nil && t == "schema"
}

func parseReport(path string, b []byte) ([]Run, error) {
	var rep struct {
		Runs []struct {
			Name   string                `json:"name"`
			Status verdict.Status        `json:"status"`
			Result *payload.AssertResult `json:"result"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: not a verdict report: %v", path, err)
	}
	runs := make([]Run, 0, len(rep.Runs))
	for _, r := range rep.Runs {
		runs = append(runs, Run{Name: r.Name, Source: path, Status: r.Status, Result: r.Result})
	}
	return runs, nil
}

func foldRecords(name, path string) ([]Run, error) {
	v := verdict.FoldFile(name, path, nil, verdict.DefaultConfig()).Verdict()
	return []Run{{Name: name, Source: path, Status: v.Status, Result: v.Result}}, nil
}

// foldSaved folds a KTSTR_SAVE directory as ktstr-run's replay does. The
// run is named after the directory and its parent ("a/3").
func foldSaved(dir, rec string) ([]Run, error) {
	cfg := verdict.DefaultConfig()
	cfg.RequireEnd = true
	name := filepath.Join(filepath.Base(filepath.Dir(filepath.Clean(dir))), filepath.Base(dir))
	f := verdict.FoldFile(name, rec, nil, cfg)
	for _, c := range []string{"console.log", "com2.log"} {
		if p := filepath.Join(dir, c); exists(p) {
			f.AddConsoleFile(p)
		}
	}
	if p := filepath.Join(dir, "noise.json"); exists(p) {
		f.AddNoiseFile(p)
	}
	v := f.Verdict()
	return []Run{{Name: name, Source: dir, Status: v.Status, Result: v.Result}}, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
