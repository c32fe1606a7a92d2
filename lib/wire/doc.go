// Package wire is the frame format of the channel between a ktstr guest and
// its host: the frame header, every message type with ktstr's numeric
// values, the fixed-layout payload codecs, a streaming assembler and a
// one-shot parser with ktstr's caps and resync rules. It follows ktstr's
// version V-A; ktstr-wire(5) is the same description as a manual page.
// Structured payloads (TEST, PMET, RAWO, KORQ, KORP) are in the sub-package
// payload.
//
// # Frames
//
// A frame is a 16-byte little-endian header followed by length payload
// bytes. Frames are simply concatenated: there is no magic number, sync
// word or sequence number.
//
//	offset  size    field    encoding
//	0       4       type     u32 LE, a Type
//	4       4       length   u32 LE, number of payload bytes that follow
//	8       4       crc32    u32 LE, CRC-32/IEEE of the payload only
//	12      4       pad      u32 LE, reserved: writers set 0
//	16      length  payload
//
// The CRC is CRC-32/ISO-HDLC, the one of Ethernet and zlib (reflected
// polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF, check
// value 0xCBF43926 for "123456789"): hash/crc32.ChecksumIEEE here, Rust's
// crc32fast::hash in ktstr. It covers the payload only, so an empty
// payload has CRC 0 and a damaged type or length is not detected by it:
// the length caps and the resync rules are the only protection there. A
// CRC mismatch never stops parsing: the frame is delivered with CRCOK
// false and each consumer decides. A non-zero pad ("possible hostile guest
// covert channel" in ktstr) is reported and the frame processed normally.
//
// A payload may be at most MaxPayload (16 MiB, ktstr's
// MAX_BULK_FRAME_PAYLOAD): exactly MaxPayload bytes is accepted, one more
// is rejected.
//
// # Message types
//
// Each Type value spells a four-letter ASCII tag when written in hex
// (0x45584954 is "EXIT"). The field is little-endian, so the four bytes on
// the wire are the tag reversed: EXIT goes out as 54 49 58 45, "TIXE".
//
//	tag   value       LE bytes     dir  internal  payload
//	STIM  0x5354494D  4D 49 54 53  G>H  no        Stimulus, 24 bytes (step start)
//	STEN  0x5354454E  4E 45 54 53  G>H  no        Stimulus, 24 bytes (step end)
//	SCST  0x53435354  54 53 43 53  G>H  no        empty
//	SCEN  0x5343454E  4E 45 43 53  G>H  no        ScenarioEnd, 16 bytes
//	SCPP  0x53435050  50 50 43 53  G>H  no        empty
//	SCRR  0x53435252  52 52 43 53  G>H  no        empty
//	EXIT  0x45584954  54 49 58 45  G>H  no        i32 LE guest exit code
//	TEST  0x54455354  54 53 45 54  G>H  no        payload.AssertResult (msgpack)
//	SCDX  0x53434458  58 44 43 53  G>H  no        i32 LE scheduler exit code
//	CRSH  0x43525348  48 53 52 43  G>H  no        UTF-8 panic text (reserved)
//	PMET  0x504D4554  54 45 4D 50  G>H  no        payload.PayloadMetrics (msgpack)
//	RAWO  0x5241574F  4F 57 41 52  G>H  no        payload.RawPayloadOutput (msgpack)
//	PRAW  0x50524157  57 41 52 50  G>H  no        raw LLVM .profraw bytes
//	WPRF  0x57505246  46 52 50 57  G>H  no        raw Perfetto trace
//	SNRQ  0x534E5251  51 52 4E 53  G>H  yes       SnapshotRequest, 72 bytes
//	SNRP  0x534E5250  50 52 4E 53  H>G  yes       SnapshotReply, 520 bytes
//	KORQ  0x4B4F5251  51 52 4F 4B  G>H  yes       payload.KernelOpRequest (msgpack)
//	KORP  0x4B4F5250  50 52 4F 4B  H>G  yes       payload.KernelOpReply (msgpack)
//	SRDY  0x53524459  59 44 52 53  G>H  yes       empty (required)
//	SCSW  0x53435357  57 53 43 53  G>H  yes       empty (required)
//	SOUT  0x534F5554  54 55 4F 53  G>H  no        guest stdout chunk
//	SERR  0x53455252  52 52 45 53  G>H  no        guest stderr chunk
//	SCLG  0x53434C47  47 4C 43 53  G>H  no        scheduler log chunk
//	LIFE  0x4C494645  45 46 49 4C  G>H  no        Lifecycle: phase byte + reason
//	EXCX  0x45584358  58 43 58 45  G>H  no        i32 LE exec exit code
//	DMSG  0x444D5347  47 53 4D 44  G>H  no        kernel log text
//	PROB  0x50524F42  42 4F 52 50  G>H  no        probe JSON text
//	KADR  0x4B414452  52 44 41 4B  G>H  n/a       KernAddrs, 24 bytes
//	HELO  0x48454C4F  4F 4C 45 48  host no        Nonce, 16 bytes
//	LOSS  0x4C4F5353  53 53 4F 4C  host no        Loss, 32 bytes (16 without a nonce)
//	VEND  0x56454E44  44 4E 45 56  host no        VMEnd, 40 bytes (24 without a nonce)
//	HBLK  0x48424C4B  4B 4C 42 48  host no        Nonce, 16 bytes (none: empty): ktstr-boot's frames follow
//	HDMP  0x48444D50  50 4D 44 48  host no        payload.HostDump (msgpack)
//	HMON  0x484D4F4E  4E 4F 4D 48  host no        payload.Monitor (msgpack)
//
// Lookup knows every type of Types and reports anything else as unknown,
// including KADR and 0, exactly as ktstr's MsgType::from_wire: KADR is a
// raw constant that dispatchers match by value. "internal" is ktstr's
// is_coordinator_internal: the frame drives host state and is never a
// verdict entry. HELO, LOSS and VEND are a ktstr-go extension:
// ktstr-drain writes them into the stream it copies out of the region
// (HELO before the first byte of the ring, then how many frames the guest
// could not write and how the VM ended after the last), so a recording
// carries what the host saw. Each carries the region's Nonce, which the
// guest cannot read: a LOSS or VEND whose nonce is not the stream's
// HELO's was forged by the guest.
// HBLK, HDMP and HMON are what ktstr-boot itself saw (failure dumps,
// host-side monitor samples): it writes HDMP and HMON to the file
// host.frames next to the region, and ktstr-drain copies that file as one
// block after the guest's frames, before LOSS and VEND, led by an HBLK
// with the nonce. Readers take the HDMP and HMON frames of a block whose
// HBLK carries the run's nonce and that nothing but host frames follows
// to VEND; the same types written by the guest are ignored.
//
// # Fixed payloads
//
// All integers are little-endian.
//
// Stimulus (STIM, STEN), exactly 24 bytes:
//
//	offset  size  field
//	0       4     elapsed_ms        u32, since scenario start
//	4       2     step_index        u16, 1-based; 0 is the baseline settle
//	6       2     op_count          u16
//	8       4     op_kinds          u32 bitmask
//	12      2     cgroup_count      u16
//	14      2     worker_count      u16
//	16      8     total_iterations  u64
//
// ScenarioEnd (SCEN), at least 16 bytes, anything beyond ignored:
//
//	offset  size  field
//	0       8     elapsed_ms        u64
//	8       8     total_iterations  u64
//
// Exit codes (EXIT, SCDX, EXCX): exactly 4 bytes, an i32.
//
// KernAddrs (KADR), exactly 24 bytes; two fields are biased by one so that
// 0 means "not sent":
//
//	offset  size  field
//	0       8     phys_base + 1
//	8       8     page_offset_base (not biased; 0 when unknown)
//	16      8     runtime address of _text + 1
//
// SnapshotRequest (SNRQ), exactly 72 bytes; request_id 0 and kind 0 are
// rejected:
//
//	offset  size  field
//	0       4     request_id  u32, never 0
//	4       4     kind        u32: 1 capture, 2 watch
//	8       64    tag         UTF-8, NUL-padded
//
// SnapshotReply (SNRP), exactly 520 bytes; any status but 1 and 2 is
// rejected:
//
//	offset  size  field
//	0       4     request_id  u32, echoed
//	4       4     status      u32: 1 OK, 2 ERR
//	8       512   reason      UTF-8, NUL-padded; all zero on OK
//
// Lifecycle (LIFE): one phase byte (1 init started, 2 payload starting,
// 3 scheduler died, 4 scheduler not attached; anything else is rejected),
// then an optional UTF-8 reason to the end of the payload.
//
// Hello (HELO, host origin), exactly 16 bytes: the run's Nonce, not all
// zero.
//
// Loss (LOSS, host origin), exactly 32 bytes, or 16 without a nonce:
//
//	offset  size  field
//	0       8     frames  u64, frames the guest could not write
//	8       8     bytes   u64, their bytes
//	16      16    nonce   the run's Nonce, not all zero
//
// VMEnd (VEND, host origin), exactly 40 bytes, or 24 without a nonce:
//
//	offset  size  field
//	0       4     reason      u32 EndReason
//	4       4     exit_code   i32, ktstr-boot's exit status
//	8       8     elapsed_ns  u64, boot start to VM end
//	16      8     flags       u64, reserved: writers set 0, readers ignore
//	24      16    nonce       the run's Nonce, not all zero
//
// Text fields (tags, reasons) are decoded like Rust's
// String::from_utf8_lossy (see Lossy). Every decoder returns a
// *PayloadError that wraps ErrPayloadSize or ErrPayloadValue.
//
// # Reading a stream
//
// Three readers share the header rules and differ in what they do with a
// bad length:
//
//   - Assembler is ktstr's HostAssembler, for live streams cut into pieces
//     of any size. It waits for a frame to be complete before judging it
//     (pad, then cap, then CRC), drops a complete oversized frame, or more
//     than 2 × Cap bytes pending without a complete frame, with the rest of
//     the stream, and reports a partial frame left at Close as a truncated
//     tail. Its frames and events depend only on the bytes, not on how
//     they were cut into pieces (ktstr's resumes with the next piece, so
//     there what survives depends on the cuts). Its
//     memory grows only with bytes received. Each payload is a fresh
//     allocation, or, with Borrow set, a view of the input that is valid
//     until the callback returns (no copy, no allocation).
//   - ParseStream is ktstr's parse_tlv_stream, for a whole buffer: it checks
//     the cap before completeness and stops at the first oversized header.
//   - Decoder reads an io.Reader strictly: an oversized frame is an error,
//     io.EOF comes only at a frame boundary and io.ErrUnexpectedEOF inside
//     a frame.
//
// Every anomaly the first two meet is an Event (CRC mismatch, non-zero pad,
// oversized frame, residual overflow, truncated tail) with its stream
// offset, so that nothing is lost or invented silently.
package wire
