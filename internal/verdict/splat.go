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
}

// defaultSplats are checked in order; the first match names the line, so
// the specific patterns come before the general ones.
var defaultSplats = []struct{ name, re string }{
	{"kasan", `^BUG: (?:KASAN|KFENCE|KMSAN): `},
	{"lockdep", `^(?:WARNING|INFO): (?:possible circular locking dependency|possible recursive locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|held lock freed|possible irq lock inversion|lock held when returning to user space|nested lock was not taken|bad contention detected|lock held at task exit)`},
	{"soft_lockup", `^(?:watchdog: )?BUG: soft lockup`},
	{"hard_lockup", `^(?:NMI )?[Ww]atchdog detected hard LOCKUP`},
	{"rcu_stall", `^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?`},
	{"hung_task", `^INFO: task .+ blocked for more than \d+ seconds`},
	{"ubsan", `^UBSAN: `},
	{"oops", `^(?:Oops: |Oops\b|general protection fault|Internal error: Oops)`},
	{"bug", `^(?:BUG: |kernel BUG at )`},
	{"warn", `^WARNING: (?:CPU: \d+ PID: \d+ at |at )`},
}

// DefaultSplats returns the built-in patterns: kasan (also KFENCE and
// KMSAN), lockdep, soft_lockup, hard_lockup, rcu_stall, hung_task, ubsan,
// oops, bug and warn, in the order they are tried.
func DefaultSplats() []Splat {
	out := make([]Splat, len(defaultSplats))
	for i, d := range defaultSplats {
		out[i] = Splat{Name: d.name, Re: regexp.MustCompile(d.re)}
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

var (
	kmsgHeader = regexp.MustCompile(`^\d+,\d+,\d+,[^;]*;`)
	levelTag   = regexp.MustCompile(`^<\d+>`)
	timestamp  = regexp.MustCompile(`^\[\s*\d+\.\d+\]\s?`)
	callerID   = regexp.MustCompile(`^\[\s*[CT]\d+\]\s?`)
)

// kernelText strips the printk decorations from a kernel log line.
func kernelText(line string) string {
	s := line
	if m := kmsgHeader.FindStringIndex(s); m != nil {
		s = s[m[1]:]
	}
	if m := levelTag.FindStringIndex(s); m != nil {
		s = s[m[1]:]
	}
	if m := timestamp.FindStringIndex(s); m != nil {
		s = s[m[1]:]
	}
	if m := callerID.FindStringIndex(s); m != nil {
		s = s[m[1]:]
	}
	return strings.TrimSpace(s)
}

// matchSplat returns the name of the first pattern that matches text.
func matchSplat(pats []Splat, text string) string {
	for _, p := range pats {
		if p.Re.MatchString(text) {
			return p.Name
		}
	}
	return ""
}
