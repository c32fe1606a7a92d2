package verdict

import (
	"fmt"
	"strings"

	"github.com/ktstr-go/ktstr/lib/wire"
)

// splatFold is the kernel's and the guest's trouble: kernel splats in
// the kernel log and the consoles, kernel panics, ktstr's "PANIC:" lines
// and the guest's crash report (CRSH). It answers with the splat
// findings and one crash finding with the best evidence first.
type splatFold struct {
	splats []splatHit      // the first maxSplatFindings
	seen   map[string]bool // the listed splats (kind, text)
	more   int64           // splat lines not listed
	count  int64           // every splat line (Counts.Splats)
	crsh   string          // the first CRSH entry's first line
	panic  evidence        // first "PANIC:" line
	kpanic evidence        // first "Kernel panic - not syncing" line
}

type evidence struct {
	text, source string
}

type splatHit struct {
	kind, text, source string
}

func newSplatFold() splatFold { return splatFold{seen: map[string]bool{}} }

// crashEntry notes a CRSH entry.
func (s *splatFold) crashEntry(p []byte) {
	if s.crsh == "" {
		s.crsh = cutText(firstLine(wire.Lossy(p[:min(len(p), 2*maxText)])))
		if s.crsh == "" {
			s.crsh = "(empty crash report)"
		}
	}
}

// panicLine looks for ktstr's panic-hook line; it reports whether l is one.
func (s *splatFold) panicLine(source, l string) bool {
	t := strings.TrimSpace(l)
	if !strings.HasPrefix(t, "PANIC:") {
		return false
	}
	if s.panic.text == "" {
		msg := strings.TrimSpace(strings.TrimPrefix(t, "PANIC:"))
		if msg == "" {
			msg = "(empty panic message)"
		}
		s.panic = evidence{msg, source}
	}
	return true
}

// kernelLine looks at one kernel log line, its printk decorations gone.
func (s *splatFold) kernelLine(splats []Splat, source, t string) {
	if s.kpanic.text == "" && strings.HasPrefix(t, "Kernel panic - not syncing") {
		s.kpanic = evidence{t, source}
	}
	kind := matchSplat(splats, t)
	if kind == "" {
		return
	}
	s.count++
	switch key := kind + "\x00" + t; {
	case s.seen[key]: // listed already
	case len(s.splats) < maxSplatFindings:
		s.seen[key] = true
		s.splats = append(s.splats, splatHit{kind, t, source})
	default:
		s.more++
	}
}

// findings adds a finding of status for each listed splat, and one that
// counts the rest.
func (s *splatFold) findings(status Status, add func(Finding)) {
	for _, h := range s.splats {
		add(Finding{Status: status, Cause: CauseSplat, Kind: h.kind, Message: h.text, Source: h.source})
	}
	if s.more > 0 {
		add(Finding{Status: status, Cause: CauseSplat, Kind: "more",
			Message: fmt.Sprintf("and %d more splat %s not listed", s.more, pluralWord(s.more, "line"))})
	}
}

// crash adds one crash finding with the best evidence first: the CRSH
// entry, a "PANIC:" line (ktstr's crash_message), a kernel panic, then
// the host's account (end, a VEND that says the VM reset); it reports
// whether it added one.
func (s *splatFold) crash(end *wire.VMEnd, add func(Finding)) bool {
	var ev []evidence
	if s.crsh != "" {
		ev = append(ev, evidence{s.crsh, "CRSH"})
	}
	if s.panic.text != "" {
		ev = append(ev, s.panic)
	}
	if s.kpanic.text != "" {
		ev = append(ev, s.kpanic)
	}
	if end != nil && end.Reason == wire.EndCrash {
		ev = append(ev, evidence{"the VM reset before the guest agent finished", "VEND"})
	}
	if len(ev) == 0 {
		return false
	}
	fd := Finding{Status: StatusFail, Cause: CauseCrash, Message: ev[0].text, Source: ev[0].source}
	for _, e := range ev[1:] {
		fd.Lines = append(fd.Lines, e.source+": "+e.text)
	}
	add(fd)
	return true
}
