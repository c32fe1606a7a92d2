package cpulist

import (
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"0", "0-3", "0-1,3,5-7", "2,4,6"} {
		l, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		if got := Format(l); got != s {
			t.Errorf("Format(Parse(%q)) = %q", s, got)
		}
	}
	if l, _ := Parse("3,1,1-2"); !slices.Equal(l, []int{1, 2, 3}) {
		t.Errorf("Parse(3,1,1-2) = %v, want sorted distinct [1 2 3]", l)
	}
	if l, err := Parse(" "); err != nil || l != nil {
		t.Errorf("Parse(blank) = %v, %v; want an empty list", l, err)
	}
	for _, bad := range []string{"a", "-1", "1-", "5-2", "99999", "0-8192"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
}

// FuzzParse: the parser never panics, and what it accepts prints back to
// a list that parses to the same CPUs.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "0-3", "1,3-5,7", "", "5-2", "a", "0-8191", "99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Parse(s)
		if err != nil {
			return
		}
		l2, err := Parse(Format(l))
		if err != nil || !slices.Equal(l, l2) {
			t.Fatalf("Parse(%q) = %v; its format %q gives %v, %v", s, l, Format(l), l2, err)
		}
		for i := range l {
			if l[i] < 0 || l[i] > Max || (i > 0 && l[i] <= l[i-1]) {
				t.Fatalf("Parse(%q) = %v: not sorted, distinct and in range", s, l)
			}
		}
	})
}
