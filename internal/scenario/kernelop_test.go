package scenario

import (
	"strings"
	"testing"
)

func TestExpectCheck(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	saved := map[string]uint64{"j0": 100}
	for _, c := range []struct {
		e    *Expect
		v    uint64
		want string // "" passes
	}{
		{nil, 5, ""},
		{&Expect{Equals: u(5)}, 5, ""},
		{&Expect{Equals: u(5)}, 6, "6, want 5"},
		{&Expect{Min: u(5), Max: u(7)}, 7, ""},
		{&Expect{Min: u(5)}, 4, "want at least 5"},
		{&Expect{Max: u(5)}, 6, "want at most 5"},
		{&Expect{GreaterThan: "j0"}, 101, ""},
		{&Expect{GreaterThan: "j0"}, 100, "want more than j0 (100)"},
		{&Expect{EqualsSaved: "j0"}, 100, ""},
		{&Expect{EqualsSaved: "j0"}, 1, "want j0 (100)"},
		{&Expect{GreaterThan: "nope"}, 1, `no value saved as "nope"`},
	} {
		err := c.e.Check(c.v, saved)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v.Check(%d) = %v, want %q", c.e, c.v, err, c.want)
		}
	}
}

func TestKernelOpEntry(t *testing.T) {
	k := KernelOp{Value: "bytes", Len: 16}
	if e := k.Entry(); len(e.Value.Bytes) != 16 || e.Value.Kind != "bytes" {
		t.Errorf("bytes read entry = %+v, want 16 bytes", e.Value)
	}
	k = KernelOp{Value: "u64", Write: 7}
	if e := k.Entry(); e.Value.U != 7 {
		t.Errorf("u64 entry = %+v", e.Value)
	}
}
