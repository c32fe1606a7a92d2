// Package dispatch applies ktstr's dispatcher gates (dispatch_bulk_message
// in src/vmm/freeze_coord/dispatch.rs, version V-A) to assembled frames:
// which frames become verdict entries, which change host state (kill,
// watchdog, requests) and which are dropped. It is the logic of
// ktstr-dispatch, kept apart from the command so that tests call exactly
// what the binary runs (Stream, and State.Dispatch under it).
//
// The arms, in ktstr's match order (ArmOf):
//
//	arm                 types              gate (effect only when)              effect records              bucketed
//	sched_exit          SCDX               CRC good                             kill (count, exit_code)     only when CRC good
//	sys_rdy             SRDY               CRC good, empty, first time          sys_rdy                     never
//	sched_swap          SCSW               CRC good, empty                      sched_swap                  never
//	kern_addrs          KADR (by value)    CRC good, exactly 24 bytes           kern_phys_base,             never
//	                                       KASLR: link >= 0xffff800000000000,   kern_virt_kaslr (first
//	                                       runtime >= that, >= link,            value wins; another value
//	                                       runtime - link <= 1 GiB              is a kaslr_divergence diag)
//	snapshot_request    SNRQ               CRC good, decodes (72 bytes, id≠0,   snapshot_request            never
//	                                       kind≠0)
//	kernel_op_request   KORQ               CRC good, decodes; tag cut to 256    kernel_op_request           never
//	scenario_start      SCST               CRC good                             scenario_start (first only),always, crc_ok as read
//	                                                                            watchdog_deadline (budget)
//	scenario_pause      SCPP               CRC good                             watchdog_pause              always
//	scenario_resume     SCRR               CRC good, budget wired, paused       watchdog_resume,            always
//	                                                                            watchdog_deadline
//	scenario_end        SCEN               CRC good, budget wired               watchdog_deadline           always
//	stimulus            STIM               CRC good, exactly 24 bytes           current_step                always
//	bucket              every other known  -                                    -                           always, crc_ok as read
//	                    non-internal type
//	                    (HELO, LOSS, VEND too)
//	internal            SNRP, KORP         -                                    -                           never (dropped)
//	unknown             anything else      -                                    unknown_type diag           never (dropped)
//
// Watchdog arithmetic (ktstr's, with its clamps): times are nanoseconds
// since the run started, taken from when the frame was read. "Encoded"
// values are clamped to at least 1 (0 means unset) and every sum
// saturates at the u64 maximum. With a budget B wired (Config.Workload):
//
//	SCST  start = max(now, 1) once; deadline = max(now + B, 1) every time
//	SCPP  pause = max(now, 1)               (1 when no budget is wired)
//	SCRR  p = pause; pause = 0; if p > 0:
//	      length = now - p (saturating at 0); total += length;
//	      deadline = max(deadline + length, 1)
//	SCEN  deadline = max(now + B, 1)
//
// A Stream numbers frames from 0 in the order the assembler completes
// them (the records' "seq") and turns assembler anomalies (crc_mismatch,
// pad_nonzero, oversized, residual_overflow, truncated_tail) into
// diagnostic records in stream order. Records depend only on the bytes
// and on when they were read, never on how the reads were cut (after an
// oversized frame or a residual overflow the assembler drops the rest of
// the stream): a replay of a recording gives the same records apart from
// times (record.Equal).
package dispatch
