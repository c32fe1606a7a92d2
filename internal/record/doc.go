// Package record is the record stream between ktstr-dispatch and
// ktstr-verdict, documented for third-party filters in ktstr-records(5).
//
// A stream is a sequence of records in one of two forms with the same
// keys: msgpack maps, one after the other (the default), or JSON lines,
// one object per line. A Reader tells them apart by the first byte that
// is not white space: '{' is JSON, anything else msgpack (a msgpack
// record always starts with a map header, 0x80-0x8f, 0xde or 0xdf).
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
// the name; the writer emits exactly these, in this order:
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
//	diag    (other refusals)    diag message tag msg_type crc_ok length
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
// Bytes (payload, request) are msgpack bin or, in JSON, standard base64
// strings. Readers ignore keys they do not know, so later versions may add
// keys without changing Version; removing or changing the meaning of a key
// changes it.
//
// A Reader never trusts a length it reads: a record has at most MaxKeys
// keys, a string at most MaxString bytes, a byte string at most MaxBytes,
// a JSON record at most MaxJSONRecord bytes, and memory grows only with
// bytes actually read.
package record
