// Package record is the record stream between ktstr-dispatch and
// ktstr-verdict: the types, a Reader and a Writer for both of its forms.
// The stream is a public interface, described for filters in any language
// by ktstr-records(5); this package is that description for Go, the same
// code the tools use. A filter reads records with a Reader, changes,
// drops or adds some, and writes them with a Writer:
//
//	ktstr-dispatch < run.frames | my-filter | ktstr-verdict
//
// scripts/filters/max-gap (it fails a run whose worst gap is too long)
// and scripts/filters/recode (it rewrites a stream in the other form) are
// two such filters.
//
// # Forms
//
// A stream is a sequence of records in one of two forms with the same
// keys: msgpack maps, one after the other (the default), or JSON lines,
// one object per line. A Reader tells them apart by the first byte that
// is not white space: '{' is JSON, anything else msgpack (a msgpack
// record always starts with a map header, 0x80-0x8f, 0xde or 0xdf).
//
// # Keys
//
// Every record carries four keys:
//
//	key    type    meaning
//	v      int     schema version, Version (1)
//	kind   string  "entry", "effect" or "diag"
//	seq    int     0-based index of the frame in the input the record comes
//	               from, counting every complete frame the assembler
//	               produced; a diag not about one delivered frame carries
//	               the index the next frame would get
//	at_ns  int     when the frame was read, ns since the reader started;
//	               the only key (with the time-valued effect keys) that may
//	               differ between two replays of one recording
//
// The other keys depend on the kind, and for effects and diagnostics on
// the name; the writer emits exactly these, in this order (a key in
// brackets only when the record has a value for it):
//
//	kind    name                keys after the common four
//	entry   -                   tag msg_type crc_ok payload
//	effect  kill                effect tag msg_type count [exit_code]
//	effect  sys_rdy             effect tag msg_type
//	effect  sched_swap          effect tag msg_type
//	effect  snapshot_request    effect tag msg_type request_id req_kind req_tag
//	effect  kernel_op_request   effect tag msg_type request_id req_tag request
//	effect  kern_phys_base      effect tag msg_type value
//	effect  kern_virt_kaslr     effect tag msg_type value
//	effect  scenario_start      effect tag msg_type start_ns
//	effect  watchdog_pause      effect tag msg_type pause_ns
//	effect  watchdog_resume     effect tag msg_type pause_ns pause_total_ns
//	effect  watchdog_deadline   effect tag msg_type deadline_ns
//	effect  current_step        effect tag msg_type step
//	diag    unknown_type        diag message tag msg_type crc_ok length
//	diag    kaslr_divergence    diag message tag msg_type value
//	diag    crc_mismatch        diag message tag msg_type offset length pad
//	diag    pad_nonzero         diag message tag msg_type offset length pad
//	diag    oversized           diag message tag msg_type offset length pad dropped
//	diag    truncated_tail      diag message tag msg_type offset length pad dropped
//	diag    residual_overflow   diag message offset dropped
//
// The refusals (Refusals) are the frames a dispatcher gate refused, one
// diagnostic each, named after the cause: sched_exit_bad_crc,
// sys_rdy_bad_crc, sys_rdy_nonempty, sys_rdy_again, sched_swap_bad_crc,
// sched_swap_nonempty, kern_addrs_bad_crc, kern_addrs_undecodable,
// kern_addrs_out_of_range, snapshot_request_bad_crc,
// snapshot_request_undecodable, kernel_op_request_bad_crc,
// kernel_op_request_undecodable, internal (a host-to-guest reply on the
// guest's stream) and unknown_type.
//
// An effect or diagnostic name this version does not know is written
// with "effect tag msg_type", or with the keys of oversized. This table,
// the field each key is kept in (the Record's comments) and so its type,
// are written once, in schema.go: the Writer, the Reader of both forms
// and a test that compares this table and the manual's with it all use
// that one source.
//
// Bytes (payload, request) are msgpack bin or, in JSON, standard base64
// strings. Readers ignore keys they do not know, so later versions may add
// keys without changing Version; removing or changing the meaning of a key
// changes it. A Record keeps only the keys of this version: a filter
// built on this package drops keys a later version adds.
//
// # Reading what others wrote
//
// A record must not carry a key twice, whether the reader knows the key
// or not: two readers could otherwise see two different records (the
// same rule as for the structured payloads of ktstr-wire(5)). Keys are
// matched exactly. A Reader accepts any integer format that holds a
// key's value (in JSON also an integral number in exponent notation, as
// jq 1.6 prints large numbers), msgpack str or bin, or nil, for strings
// and bytes, and in JSON null for them.
//
// A Reader never trusts a length it reads: a record has at most MaxKeys
// keys of at most MaxKeyLen bytes, a string at most MaxString bytes, a
// byte string at most MaxBytes, a JSON record at most MaxJSONRecord bytes,
// an unknown key's value at most MaxDepth levels of nesting (counting the
// record), and memory grows only with bytes actually read. It decodes
// msgpack through the project's bounded layer over
// github.com/vmihailenco/msgpack/v5, the same as the payloads.
//
// Read returns io.EOF only at a clean end of stream, between records; any
// other error is an *Error (index of the record, cause) that matches
// ErrFormat, and io.ErrUnexpectedEOF when the stream ended inside a
// record.
//
// ReadShared is Read for a reader that looks at each record once and
// keeps nothing of it (ktstr-verdict's fold): the Record, its Payload and
// its Request belong to the Reader and are overwritten by the next call,
// so that a stream costs no allocation per record. The names a record
// carries (kinds, effects, diagnostics, known tags) come from a fixed
// table, never from a string made per record.
//
// # Writing
//
// A Writer buffers: call Flush when a reader should see what was written
// so far (a filter flushes when its input has nothing more buffered,
// Reader.Buffered, so the pipeline streams). Write sets the record's V to
// Version. Equal compares two records but for the times, which differ
// between two replays of one recording.
//
// A Filter does all of that: it copies a stream through a function that
// may change or drop each record, in the form it came in (Reader.JSON)
// or the one it is told, flushing as it should.
package record
