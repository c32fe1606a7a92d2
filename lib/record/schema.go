package record

import (
	"fmt"
	"strings"
)

// The schema is written once, here: fields says which Record field holds
// each key and so its type; layouts says which keys each record carries
// and in what order. The Writer, the Reader (both forms) and the key
// table of doc.go and ktstr-records(5) (checked by a test) all come from
// these two tables.

// A field is one key and the Record field that holds its value. ptr
// returns a pointer to that field, whose type gives the key's type:
//
//	*string  string     *bool    boolean     *[]byte  bytes
//	*int     int32      *int64   int64       *exitCode  int32, optional
//	*uint16  uint16     *uint32  uint32      *uint64  uint64
type field struct {
	key string
	ptr func(*Record) any
}

// exitCode is exit_code: kill effects carry it only when HasExitCode.
type exitCode Record

var fields = [...]field{
	{"v", func(r *Record) any { return &r.V }},
	{"kind", func(r *Record) any { return &r.Kind }},
	{"seq", func(r *Record) any { return &r.Seq }},
	{"at_ns", func(r *Record) any { return &r.AtNS }},
	{"tag", func(r *Record) any { return &r.Tag }},
	{"msg_type", func(r *Record) any { return &r.MsgType }},
	{"crc_ok", func(r *Record) any { return &r.CRCOK }},
	{"payload", func(r *Record) any { return &r.Payload }},
	{"effect", func(r *Record) any { return &r.Effect }},
	{"count", func(r *Record) any { return &r.Count }},
	{"exit_code", func(r *Record) any { return (*exitCode)(r) }},
	{"request_id", func(r *Record) any { return &r.RequestID }},
	{"req_kind", func(r *Record) any { return &r.ReqKind }},
	{"req_tag", func(r *Record) any { return &r.ReqTag }},
	{"request", func(r *Record) any { return &r.Request }},
	{"value", func(r *Record) any { return &r.Value }},
	{"start_ns", func(r *Record) any { return &r.StartNS }},
	{"deadline_ns", func(r *Record) any { return &r.DeadlineNS }},
	{"pause_ns", func(r *Record) any { return &r.PauseNS }},
	{"pause_total_ns", func(r *Record) any { return &r.PauseTotalNS }},
	{"step", func(r *Record) any { return &r.Step }},
	{"diag", func(r *Record) any { return &r.Diag }},
	{"offset", func(r *Record) any { return &r.Offset }},
	{"length", func(r *Record) any { return &r.Length }},
	{"pad", func(r *Record) any { return &r.Pad }},
	{"dropped", func(r *Record) any { return &r.Dropped }},
	{"message", func(r *Record) any { return &r.Message }},
}

// common are the keys every record starts with.
const common = "v kind seq at_ns"

// layouts are the keys after the common four, by kind and name; a key in
// brackets is optional. A name missing here gets its kind's "" entry: an
// effect or diagnostic a later version adds is written with the keys
// this version knows for its kind.
var layouts = []struct{ kind, name, keys string }{
	{KindEntry, "", "tag msg_type crc_ok payload"},
	{KindEffect, EffectKill, "effect tag msg_type count [exit_code]"},
	{KindEffect, EffectSysRdy, "effect tag msg_type"},
	{KindEffect, EffectSchedSwap, "effect tag msg_type"},
	{KindEffect, EffectSnapshotRequest, "effect tag msg_type request_id req_kind req_tag"},
	{KindEffect, EffectKernelOpRequest, "effect tag msg_type request_id req_tag request"},
	{KindEffect, EffectKernPhysBase, "effect tag msg_type value"},
	{KindEffect, EffectKernVirtKASLR, "effect tag msg_type value"},
	{KindEffect, EffectScenarioStart, "effect tag msg_type start_ns"},
	{KindEffect, EffectWatchdogPause, "effect tag msg_type pause_ns"},
	{KindEffect, EffectWatchdogResume, "effect tag msg_type pause_ns pause_total_ns"},
	{KindEffect, EffectWatchdogDeadline, "effect tag msg_type deadline_ns"},
	{KindEffect, EffectCurrentStep, "effect tag msg_type step"},
	{KindEffect, "", "effect tag msg_type"},
	{KindDiag, DiagUnknownType, "diag message tag msg_type crc_ok length"},
	{KindDiag, DiagKASLRDivergence, "diag message tag msg_type value"},
	{KindDiag, DiagCRCMismatch, "diag message tag msg_type offset length pad"},
	{KindDiag, DiagPadNonzero, "diag message tag msg_type offset length pad"},
	{KindDiag, DiagOversized, "diag message tag msg_type offset length pad dropped"},
	{KindDiag, DiagTruncatedTail, "diag message tag msg_type offset length pad dropped"},
	{KindDiag, DiagResidualOverflow, "diag message offset dropped"},
	{KindDiag, "", "diag message tag msg_type offset length pad dropped"},
}

type layoutKey struct{ kind, name string }

var (
	// fieldIndex maps a key to its index in fields.
	fieldIndex = func() map[string]int {
		m := map[string]int{}
		for i, f := range fields {
			m[f.key] = i
		}
		return m
	}()
	// keyLists are the field indexes each record carries, common four
	// first; unknownKind is for a kind this version does not know.
	keyLists    = map[layoutKey][]int{}
	unknownKind []int
)

func init() {
	parse := func(keys string) []int {
		var l []int
		for _, k := range strings.Fields(keys) {
			i, ok := fieldIndex[strings.Trim(k, "[]")]
			if !ok {
				panic(fmt.Sprintf("record: layout key %q is not a field", k))
			}
			l = append(l, i)
		}
		return l
	}
	unknownKind = parse(common)
	for _, l := range layouts {
		keyLists[layoutKey{l.kind, l.name}] = append(parse(common), parse(l.keys)...)
	}
	// Every gate refusal carries unknown_type's keys.
	for _, name := range Refusals {
		keyLists[layoutKey{KindDiag, name}] = keyLists[layoutKey{KindDiag, DiagUnknownType}]
	}
}

// keyList returns the field indexes r carries, in order.
func keyList(r *Record) []int {
	var name string
	switch r.Kind {
	case KindEffect:
		name = r.Effect
	case KindDiag:
		name = r.Diag
	}
	if l, ok := keyLists[layoutKey{r.Kind, name}]; ok {
		return l
	}
	if l, ok := keyLists[layoutKey{r.Kind, ""}]; ok {
		return l
	}
	return unknownKind
}

// iExitCode is the index of the one optional key, which a record
// carries only when it has a value for it.
var iExitCode = fieldIndex["exit_code"]

// keyTable is the key table of doc.go and ktstr-records(5), one line per
// record: "entry" or the kind and the name, then the keys.
func keyTable() []string {
	var lines []string
	for _, l := range layouts {
		if l.name == "" && l.kind != KindEntry {
			continue // the fallbacks are described in words
		}
		lines = append(lines, strings.TrimSpace(l.kind+" "+l.name)+" "+l.keys)
	}
	return lines
}
