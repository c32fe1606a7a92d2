package scenario

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLimitsDecode(t *testing.T) {
	for _, tc := range []struct {
		js   string
		want string // Limits.String(), or the error
	}{
		{`{"cpu_max":"max"}`, "cpu.max=max 100000"},
		{`{"cpu_max":"25000 50000"}`, "cpu.max=25000 50000"},
		{`{"cpu_idle":true,"pids_max":"max"}`, "cpu.idle=1 pids.max=max"},
		{`{"memory_max":"1G","memory_high":1048576}`, "memory.max=1073741824 memory.high=1048576"},
		{`{"memory_max":"2K"}`, "memory.max=2048"},
		{`{"cpu_max":"999"}`, `"999": want "max"`},
		{`{"cpu_max":"1000 999"}`, `"1000 999": want "max"`},
		{`{"cpu_max":5}`, `5: want "max"`},
		{`{"memory_max":"-1"}`, `"-1": want a count`},
		{`{"memory_max":"99999999999G"}`, `"99999999999G": want a count`},
		{`{"pids_max":true}`, `true: want a count`},
		{`{"swap_max":1}`, `swap_max: unknown field (allowed: cpu_idle, cpu_max, memory_high, memory_max, pids_max)`},
		{`{}`, `want at least one of`},
	} {
		var l Limits
		err := json.Unmarshal([]byte(tc.js), &l)
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = l.String()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.js, got, tc.want)
		}
	}
}
