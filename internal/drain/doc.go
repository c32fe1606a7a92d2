// Package drain is the logic of ktstr-drain: it copies the guest-to-host
// ring of a region to a writer, byte-exact, after a HELO frame with the
// run's nonce, and appends the host trailer.
//
// # Exactly once
//
// Run writes bytes straight from the shared ring to the writer and
// advances the ring's read position by what the writer accepted, only
// after the write returned. The position lives in the region (its
// authoritative copy in the host-only page), not in the process, so a
// drain that stops and a drain started later over the same region write
// every byte once, in order:
//
//   - Stop (ktstr-drain maps SIGINT and SIGTERM to it) takes effect
//     between writes: the position always equals what was written.
//   - A write error or a closed reader (EPIPE) advances by the bytes the
//     kernel accepted before the error.
//   - SIGKILL cannot be caught. If it lands after write(2) accepted bytes
//     and before the position store that follows, a new drain writes those
//     bytes again. The window is the rest of that write(2) call plus two
//     stores; it is at most MaxWrite bytes wide. Nothing is ever lost.
//
// # Host frames: HELO and the trailer
//
// Run writes host-origin frames in the wire format, each with the
// region's nonce (shm.Region.Nonce), which the guest cannot read, so the
// verdict can tell them from frames the guest forged:
//
//	frame  when                                    payload
//	HELO   first, when Run starts at the ring's    wire.Nonce
//	       first byte (a resumed drain writes none)
//	LOSS   the producer dropped frames             wire.Loss: frames u64, bytes u64 (cumulative), nonce
//	VEND   the region is closed                    wire.VMEnd: reason, exit code, elapsed ns, nonce
//
// LOSS and VEND follow the last byte of the ring, once the region is
// closed and the ring empty (or, without Follow, once the ring is empty).
// Ring positions no producer reaches (a hostile guest's) stop the copy;
// with Follow the run still waits for the close and writes the trailer,
// its VEND flagged wire.VMEndRingCorrupt, before it returns the error.
//
// # The region's owner
//
// With Follow, Run waits until ktstr-boot closes the region; if the
// ktstr-boot that created it is gone without closing it, Run ends as if it
// had, with reason vmm_error. BootWatch names that process by the pid and
// start time the region records and holds it through a pidfd, so that a
// zombie or a new process with the same pid does not pass for it.
//
// # Polling
//
// The guest cannot wake a host process, so an empty ring is polled:
// busily for 50µs after the last data (back-to-back frames cost no
// sleep), then every Poll (1 ms) for 20 ms, then every MaxPoll (4 ms).
// Each poll wakes a host thread; on a small host running emulated vCPUs
// (or a host that is itself a VM, where a wake-up is an IPI and an exit)
// those wake-ups are taken from the guest, so a ring that stays empty is
// looked at 250 times a second, not 1000. On this project's 2-CPU
// machine the guest's boot, during which nothing comes, got about 140 ms
// faster that way (median of 14 alternating pairs, with ktstr-boot's
// done check at 10 ms instead of 2 ms).
// A heartbeat goroutine increments the ring's consumer heartbeat every
// shm.BeatInterval, also while a write blocks, so the producer knows a
// consumer is attached and waits for space instead of dropping.
package drain
