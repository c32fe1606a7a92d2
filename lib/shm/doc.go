// Package shm is the shared-memory region between ktstr-boot (the host)
// and the guest agent: a header, a guest-to-host ring (TX) for frames, a
// host-to-guest ring (RX) for replies, control slots, and a host-only
// trailer page the guest cannot reach. The same layout is in ktstr-shm(5).
//
// # The region file
//
// ktstr-boot creates the region as a file (Create) and gives its first
// Size bytes to the guest as memory (an ivshmem BAR, or a memory slot in
// an E820 gap). The last page of the file is never mapped into the guest.
// All integers are little-endian; offsets are in bytes.
//
//	offset           size       what                                        guest sees it
//	0                4096       header page                                 yes
//	tx_off (4096)    tx_cap     TX ring: frames, guest -> host              yes
//	rx_off           rx_cap     RX ring: replies, host -> guest             yes
//	...              ...        slack up to Size                            yes
//	Size             4096       host trailer page                           no
//
// Size is a power of two (16 MiB by default, as ivshmem requires);
// DefaultLayout gives TX half of it and RX a sixteenth.
//
// # The header page
//
// Fields are grouped by the side that writes them; each group has a
// 128-byte slot of its own (Line: two cache lines, so that the
// adjacent-line prefetcher does not couple them), so a producer's stores
// never share a cache line with its consumer's.
//
//	offset  size  field            written by         meaning
//	0x000   4     magic            host, at creation  0x4D48534B, "KSHM"; stored last
//	0x004   4     version          host, at creation  2
//	0x008   4     header_size      host, at creation  4096
//	0x00C   4     flags            host, at creation  0
//	0x010   8     size             host, at creation  guest-visible size
//	0x018   8     tx_off           host, at creation  TX ring offset
//	0x020   8     tx_cap           host, at creation  TX ring capacity
//	0x028   8     rx_off           host, at creation  RX ring offset
//	0x030   8     rx_cap           host, at creation  RX ring capacity
//	0x080   8     tx_write         guest              TX producer position
//	0x088   8     tx_drop_frames   guest              frames the guest could not write
//	0x090   8     tx_drop_bytes    guest              their bytes
//	0x100   8     tx_read          host               TX consumer position
//	0x108   8     tx_beat          host               TX consumer heartbeat
//	0x180   8     rx_write         host               RX producer position
//	0x200   8     rx_read          guest              RX consumer position
//	0x208   8     rx_beat          guest              RX consumer heartbeat
//	0x280   4x8   control[8]       see below          one u32 slot each
//	0x300   4     guest_state      guest              0 none, 1 running, 2 done
//
// Control slots (u32; only the low byte carries a value). The side that
// asks moves a slot from 0 to a value with compare-and-swap; the side
// asked acts and swaps it back to 0.
//
//	slot  offset  name        set by  value
//	0     0x280   CtlDump     host    'D': write "D" to /proc/sysrq-trigger
//	1     0x284   CtlStall    host    'S': debugging stall
//	2     0x288   CtlShutdown host    0xD3: graceful shutdown requested
//	3     0x28C   -           -       reserved
//	4     0x290   CtlSignal0  host    signal slot 0, host to guest
//	5     0x294   CtlSignal1  guest   signal slot 1, guest to host
//	6, 7  0x298   -           -       reserved
//
// # The host trailer page
//
// Written by ktstr-boot and read by ktstr-drain; the guest cannot reach
// it, so the host trusts nothing else for the layout, the end of the run
// or where to resume reading.
//
//	offset  size  field       meaning
//	0x00    4     magic       0x5453484B, "KHST"; stored last
//	0x04    4     version     2
//	0x08    8     size        guest-visible size (must equal file size - 4096)
//	0x10    8     tx_off      the authoritative layout copy
//	0x18    8     tx_cap
//	0x20    8     rx_off
//	0x28    8     rx_cap
//	0x40    4     closed      1 once the VM is gone and can no longer write
//	0x44    4     reason      how the VM ended (wire.EndReason)
//	0x48    4     exit_code   ktstr-boot's exit status (i32)
//	0x50    8     elapsed_ns  boot start to VM end
//	0x58    4     boot_pid    the creator's pid
//	0x60    8     boot_start  the creator's start time, clock ticks since boot
//	                          (/proc/PID/stat field 22); 0 unknown
//	0x68    16    nonce       random, per region: ktstr-drain puts it in the
//	                          frames it writes (HELO, LOSS, VEND); the guest
//	                          cannot read it, so it cannot forge them
//	0x80    8     tx_read     the TX consumer position, authoritative copy
//
// # The rings
//
// Each ring has one producer and one consumer. Positions are free-running
// u64 byte counts: they only grow and wrap at 2^64, and the byte at
// position p lives at ring[p % cap] (cap a power of two, 4 KiB to 1 GiB).
// write - read (mod 2^64) is the number of unread bytes, from 0 to cap. A
// frame may wrap past the end of the ring, and may be exactly cap bytes.
// The ring does not parse what it carries: TX carries wire frames,
// written whole.
//
// Ordering. All position, counter, heartbeat and flag accesses are atomic
// (sync/atomic: sequentially consistent; on amd64 a MOV load and an XCHG
// store, on arm64 LDAR and STLR):
//
//   - The producer copies a frame's bytes into the ring, then stores the
//     new write position. One store publishes the whole frame, so a
//     consumer never sees part of one.
//   - The consumer loads the write position before it looks at any byte.
//   - The consumer stores the new read position only after it is done
//     with the bytes (ktstr-drain: after write(2) to stdout returned); the
//     producer loads the read position before it reuses the space.
//   - The host's TX consumer stores the read position to the host page
//     first and to the header second. A consumer that dies between the
//     two leaves the host copy ahead; a new consumer starts from the host
//     copy and rewrites the header's, so a byte the producer may already
//     have overwritten is never read again.
//   - Create stores both magics last, so a reader that polls sees either
//     no region or a complete one; MarkClosed stores the end of the run
//     before the closed flag.
//
// Delivery. The producer never overwrites unread bytes: a frame that does
// not fit is either waited for or dropped whole, and a drop is counted in
// tx_drop_frames and tx_drop_bytes (TX; the RX producer, the host,
// reports its own failures) and returned as ErrFull or ErrTooLarge. It is
// never silent: ktstr-drain ends the stream with a LOSS frame carrying the
// counters.
//
// Waiting and the heartbeat. A producer should wait for space only while
// a consumer is attached: without one, every frame past a full ring would
// wait the whole bound, and a guest run without ktstr-drain would stall
// for minutes. So a consumer beats: it increments its heartbeat at least
// every BeatInterval (50 ms), from a goroutine of its own so that it goes
// on while the consumer is blocked passing bytes downstream. A Producer
// facing a full ring polls; it keeps waiting while the heartbeat or the
// read position changes at least once per Grace (1 s by default), at most
// Wait in all, then counts a drop. After giving up once it does not wait
// again until the read position moves, so a consumer that hangs costs one
// Wait, not one per frame. The heartbeat is a counter, not a time: the
// guest's and the host's clocks need not agree.
//
// # What is validated
//
// The host reads its layout from the trailer page and never again from
// the guest-visible header, which the guest can overwrite at will. The
// guest reads its layout from the header. Either way it is checked once,
// at open: magics, versions, header size, size against the mapping (and
// the file size), each ring a power of two from 4 KiB to 1 GiB,
// page-aligned, after the header, inside the region, the two disjoint;
// the mapping 8-byte aligned. A failure is a *HeaderError naming the
// field.
//
// Each side keeps its own position in process memory and only loads the
// other side's. Every loaded position is checked before use: more than
// cap unread bytes (including a position that went backwards) is a
// *PositionError, which wraps ErrCorrupt, and nothing is read or written.
// Offsets into a ring are taken modulo its capacity, so no value in the
// region can make either side touch memory outside its rings. Counters,
// heartbeats, control values and the guest state are reports: any value
// is harmless. Every wait on the other side is bounded (Producer.Wait),
// so a hostile guest cannot hang the host; it can only corrupt its own
// stream.
//
// The consumer hands out slices that alias the ring (Peek) so that
// ktstr-drain writes straight from shared memory to stdout; the guest can
// change those bytes while they are being written, which again affects
// only its own stream.
package shm
