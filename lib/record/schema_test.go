package record

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKeyTableDocumented: the key table of doc.go and the one of
// ktstr-records(5) are the schema tables of schema.go, line for line.
func TestKeyTableDocumented(t *testing.T) {
	want := keyTable()
	for _, tc := range []struct {
		file, start, end string
		clean            func(string) string
	}{
		{"doc.go", "//	kind    name", "//\n", func(s string) string {
			s = strings.TrimPrefix(s, "//\t")
			return strings.Replace(s, " - ", " ", 1)
		}},
		{"../../man/man5/ktstr-records.5", ".SH KEYS BY RECORD", ".ft\n.fi", func(s string) string {
			return strings.ReplaceAll(s, `\-`, "-")
		}},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		i := strings.Index(text, tc.start)
		if i < 0 {
			t.Fatalf("%s: no %q", tc.file, tc.start)
		}
		text = text[i:]
		text = text[:strings.Index(text, tc.end)]
		var got []string
		for _, l := range strings.Split(text, "\n")[1:] {
			l = tc.clean(l)
			switch {
			case strings.TrimSpace(l) == "" || strings.HasPrefix(l, "."):
			case strings.HasPrefix(l, " ") && len(got) > 0: // a continuation
				got[len(got)-1] += " " + strings.TrimSpace(l)
			case regexp.MustCompile(`^(entry|effect|diag)\b`).MatchString(l):
				got = append(got, l)
			}
		}
		for i := range got {
			got[i] = strings.Join(strings.Fields(got[i]), " ")
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: key table (-schema.go +%s):\n%s", tc.file, tc.file, d)
		}
	}
}

var class = regexp.MustCompile(`\b(un)?signed (16|32|64)-bit`)

// TestKeyTypesDocumented: ktstr-records(5) gives each integer key the
// width and sign of the Record field that holds it.
func TestKeyTypesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../man/man5/ktstr-records.5")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), `\-`, "-")
	i := strings.Index(text, ".SH TYPES")
	text = text[i : i+strings.Index(text[i:], "Readers accept")]
	// "X, Y and Z are unsigned 32-bit;" and the like, keys in .BR lines.
	classes := map[string]string{}
	var keys []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, ".BR ") || strings.HasPrefix(l, ".B ") {
			for _, w := range strings.Fields(strings.NewReplacer(`"`, " ", ",", " ", " and the ", " ").Replace(l)[3:]) {
				if w != "and" && w != "the" && w != "effect" && w != "keys" {
					keys = append(keys, w)
				}
			}
			continue
		}
		if c := class.FindString(l); c != "" {
			for _, k := range keys {
				classes[k] = c
			}
			keys = nil
		}
	}
	var r Record
	for _, f := range fields {
		var want string
		switch f.ptr(&r).(type) {
		case *uint32:
			want = "unsigned 32-bit"
		case *uint16:
			want = "unsigned 16-bit"
		case *int, *exitCode:
			want = "signed 32-bit"
		case *uint64:
			want = "unsigned 64-bit"
		case *int64:
			want = "signed 64-bit"
		default:
			continue
		}
		got := classes[f.key]
		if strings.HasSuffix(f.key, "_ns") && f.key != "at_ns" && got == "" {
			got = classes["*_ns"]
		}
		if got != want {
			t.Errorf("ktstr-records(5) says %s is %q, the Record holds it as %s", f.key, got, want)
		}
	}
}
