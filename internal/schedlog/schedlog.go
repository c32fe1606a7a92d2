// Package schedlog is the text of the scheduler log, the SCLG frames the
// guest agent writes and ktstr-verdict reads (ktstr-wire(5)), defined once
// for both: the markers around the scheduler's output, and lines labelled
// with the guest's CLOCK_MONOTONIC time and the stream they came from:
//
//	===SCHED_OUTPUT_START===
//	[    2.512345] stdout: text     the scheduler's stdout
//	[    2.512400] stderr: text     its stderr
//	[    2.600000] ktstr: text      the agent's own note (a signal it sent)
//	===SCHED_OUTPUT_END===
package schedlog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Markers around the scheduler's output (ktstr's).
const (
	Start = "===SCHED_OUTPUT_START==="
	End   = "===SCHED_OUTPUT_END==="
)

// Streams a line is labelled with.
const (
	Stdout = "stdout"
	Stderr = "stderr"
	Ktstr  = "ktstr" // the agent's own notes about the scheduler
)

// Stamp formats a time as the kernel log does: "[    2.512345]".
func Stamp(d time.Duration) string {
	us := d.Microseconds()
	return fmt.Sprintf("[%5d.%06d]", us/1e6, us%1e6)
}

// Line is one labelled line with its newline.
func Line(stamp, stream, text string) string {
	return stamp + " " + stream + ": " + text + "\n"
}

// Split splits a labelled line into its stream and text; any other line
// is all text, with no stream.
func Split(l string) (stream, text string) {
	if len(l) < 10 || l[0] != '[' {
		return "", l
	}
	end := strings.Index(l, "] ")
	if end < 0 {
		return "", l
	}
	sec, us, ok := strings.Cut(strings.TrimLeft(l[1:end], " "), ".")
	if !ok || sec == "" || len(us) != 6 || strings.Trim(sec+us, "0123456789") != "" {
		return "", l
	}
	stream, text, ok = strings.Cut(l[end+2:], ": ")
	switch {
	case !ok:
		return "", l
	case stream == Stdout, stream == Stderr, stream == Ktstr:
		return stream, text
	}
	return "", l
}

// droppedNote is the text of the agent's note that it dropped lines.
const droppedNote = " lines of output dropped"

// Dropped is the text of the agent's note (stream Ktstr) that it dropped
// n lines over its budget of lines and bytes, and that the last held
// follow.
func Dropped(n int64, lines, bytes, held int) string {
	return fmt.Sprintf("%d%s (over the %d-line or %d-byte budget); the last %d follow", n, droppedNote, lines, bytes, held)
}

// ParseDropped returns the count of a Dropped note's text.
func ParseDropped(text string) (int64, bool) {
	n, _, ok := strings.Cut(text, droppedNote)
	if !ok {
		return 0, false
	}
	k, err := strconv.ParseInt(n, 10, 64)
	return k, err == nil && k > 0
}
