package verdict

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Splat is a named pattern for a kernel splat: a line of the kernel log
// (DMSG) or of a console file that says the kernel found a bug. Re is
// matched against the line with its printk prefix (the "[  1.234567]"
// timestamp, a "<4>" level or a /dev/kmsg "4,123,456,-;" header, and a
// "[T1]" caller id) removed.
type Splat struct {
	Name string
	Re   *regexp.Regexp
	// need, when set, lists words one of which a line must contain for
	// Re to match: a cheap test that spares the regexp on ordinary lines.
	need []string
}

// defaultSplats are checked in order; the first match names the line, so
// the specific patterns come before the general ones.
var defaultSplats = []struct {
	name, re string
	need     []string
}{
	{"kasan", `^BUG: (?:KASAN|KFENCE|KMSAN): `, []string{"BUG: "}},
	{"lockdep", `^(?:WARNING|INFO): (?:possible circular locking dependency|possible recursive locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|held lock freed|possible irq lock inversion|lock held when returning to user space|nested lock was not taken|bad contention detected|lock held at task exit)`, []string{"WARNING: ", "INFO: "}},
	{"soft_lockup", `^(?:watchdog: )?BUG: soft lockup`, []string{"BUG: "}},
	{"hard_lockup", `^(?:NMI )?[Ww]atchdog detected hard LOCKUP`, []string{"LOCKUP"}},
	{"rcu_stall", `^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?`, []string{"INFO: "}},
	{"hung_task", `^INFO: task .+ blocked for more than \d+ seconds`, []string{"INFO: "}},
	{"ubsan", `^UBSAN: `, []string{"UBSAN: "}},
	{"oops", `^(?:Oops: |Oops\b|general protection fault|Internal error: Oops)`, []string{"Oops", "general protection fault"}},
	{"bug", `^(?:BUG: |kernel BUG at )`, []string{"BUG"}},
	{"warn", `^WARNING: (?:CPU: \d+ PID: \d+ at |at )`, []string{"WARNING: "}},
}

// DefaultSplats returns the built-in patterns: kasan (also KFENCE and
// KMSAN), lockdep, soft_lockup, hard_lockup, rcu_stall, hung_task, ubsan,
// oops, bug and warn, in the order they are tried.
func DefaultSplats() []Splat {
	out := make([]Splat, len(defaultSplats))
	for i, d := range defaultSplats {
		out[i] = Splat{Name: d.name, Re: regexp.MustCompile(d.re), need: d.need}
	}
	return out
}

// DefaultSplatNames lists the built-in pattern names in order.
func DefaultSplatNames() []string {
	out := make([]string, len(defaultSplats))
	for i, d := range defaultSplats {
		out[i] = d.name
	}
	return out
}

// ErrSplatSpec is wrapped by every error about a --splat argument.
var ErrSplatSpec = errors.New("verdict: bad splat pattern")

// ParseSplat parses "NAME=REGEXP".
func ParseSplat(spec string) (Splat, error) {
	name, re, ok := strings.Cut(spec, "=")
	if !ok || name == "" || re == "" {
		return Splat{}, fmt.Errorf("%w: %q: want NAME=REGEXP", ErrSplatSpec, spec)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return Splat{}, fmt.Errorf("%w: %q: name may hold letters, digits, _ and - only", ErrSplatSpec, spec)
		}
	}
	rx, err := regexp.Compile(re)
	if err != nil {
		return Splat{}, fmt.Errorf("%w: %q: %v", ErrSplatSpec, spec, err)
	}
	return Splat{Name: name, Re: rx}, nil
}

// SelectSplats builds the pattern list from the command line: the extra
// patterns first (so they win), then the defaults minus those named in
// drop ("all" drops every default). An unknown name in drop is an error.
func SelectSplats(extra []Splat, drop []string) ([]Splat, error) {
	dropped := map[string]bool{}
	known := map[string]bool{"all": true}
	for _, n := range DefaultSplatNames() {
		known[n] = true
	}
	for _, n := range drop {
		if !known[n] {
			return nil, fmt.Errorf("%w: no default pattern named %q (have %s, all)", ErrSplatSpec, n, strings.Join(DefaultSplatNames(), ", "))
		}
		dropped[n] = true
	}
	out := append([]Splat(nil), extra...)
	if dropped["all"] {
		return out, nil
	}
	for _, s := range DefaultSplats() {
		if !dropped[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// kernelText strips the printk decorations from a kernel log line: a
// /dev/kmsg "4,123,456,-;" header, a "<4>" level, a "[  1.234567]"
// timestamp and a "[T1]" caller id, in that order, each optional.
func kernelText(line string) string {
	s := line
	if i := strings.IndexByte(s, ';'); i > 0 && kmsgHeader(s[:i]) {
		s = s[i+1:]
	}
	if len(s) > 2 && s[0] == '<' {
		if j := strings.IndexByte(s, '>'); j > 1 && allDigits(s[1:j]) {
			s = s[j+1:]
		}
	}
	if r, ok := bracket(s, func(in string) bool {
		a, b, ok := strings.Cut(strings.TrimLeft(in, " "), ".")
		return ok && allDigits(a) && allDigits(b)
	}); ok {
		s = r
	}
	if r, ok := bracket(s, func(in string) bool {
		in = strings.TrimLeft(in, " ")
		return len(in) > 1 && (in[0] == 'T' || in[0] == 'C') && allDigits(in[1:])
	}); ok {
		s = r
	}
	return strings.TrimSpace(s)
}

// kmsgHeader reports whether h is "level,seq,usec,flags" (flags any).
func kmsgHeader(h string) bool {
	parts := strings.SplitN(h, ",", 4)
	return len(parts) == 4 && allDigits(parts[0]) && allDigits(parts[1]) && allDigits(parts[2])
}

// bracket strips a leading "[...]" and one space after it when ok(inside).
func bracket(s string, ok func(string) bool) (string, bool) {
	if len(s) < 2 || s[0] != '[' {
		return s, false
	}
	j := strings.IndexByte(s, ']')
	if j < 0 || !ok(s[1:j]) {
		return s, false
	}
	return strings.TrimPrefix(s[j+1:], " "), true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// matchSplat returns the name of the first pattern that matches text.
func matchSplat(pats []Splat, text string) string {
	for _, p := range pats {
		if len(p.need) > 0 && !containsAny(text, p.need) {
			continue
		}
		if p.Re.MatchString(text) {
			return p.Name
		}
	}
	return ""
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
