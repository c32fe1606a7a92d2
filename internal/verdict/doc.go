// Package verdict folds a run's records (ktstr-records(5)) and console
// files into a verdict people can trust, and renders it as a text, JSON,
// JUnit or TAP report. It is the logic of ktstr-verdict(1).
//
// # What counts
//
// Only entries with crc_ok count. TEST and EXIT are last-wins: the last
// CRC-valid TEST is the guest's result, and the last CRC-valid EXIT whose
// payload is exactly 4 bytes is the guest's exit code. As in ktstr, the
// result decides the verdict when it decodes; the exit code is only
// reported.
//
// # The lattice
//
// Each finding has a status; the run's status is the highest of them,
// starting from PASS (SKIP when every outcome of the result is a skip):
//
//	rank  status        exit  meaning
//	4     FAIL          1     the scheduler or kernel misbehaved
//	3     ERROR         4     infrastructure: the record stream cannot be trusted
//	2     INCONCLUSIVE  3     the result says it cannot tell
//	1     PASS          0     every check passed
//	0     SKIP          0     the test did not apply
//
// ktstr's lattice is Fail > Inconclusive > Pass > Skip; ERROR sits between
// Fail and Inconclusive, because lost frames mean a pass (or an
// inconclusive) cannot be trusted, while a failure that did arrive still
// stands. Several runs fold the same way: every run must pass, and no
// run is dropped for a later attempt (no retry-until-green).
//
// # Causes
//
//	cause           status                  evidence
//	crash           FAIL                    CRSH entry; "PANIC:" line in SOUT/SERR or a console;
//	                                        "Kernel panic - not syncing" in DMSG or a console; VEND crash
//	scheduler_died  FAIL                    SCDX (its exit code) or a kill effect; the kernel's
//	                                        "sched_ext: BPF scheduler "X" disabled (REASON)" with an
//	                                        error REASON; LIFE SchedulerDied or SchedulerNotAttached.
//	                                        The scheduler log's "EXIT:" line and the kernel's message
//	                                        are attached.
//	timeout         FAIL                    VEND timeout (also after a result: the guest hung in teardown)
//	assertion       FAIL                    a Fail outcome in TEST
//	splat           FAIL (or INCONCLUSIVE)  a DMSG or console line matching a splat pattern
//	infrastructure  ERROR                   LOSS (ring drops); CRC-failed frames; truncated_tail,
//	                                        oversized or residual_overflow diagnostics; unreadable
//	                                        records or console files; VEND vmm_error; a VEND that
//	                                        other frames follow, or a HELO, LOSS or VEND without the
//	                                        nonce of the HELO the stream begins with (the guest forged
//	                                        it; ignored); no VEND when Config.RequireEnd is set
//	no_result       FAIL, or ERROR when     no TEST (or one that does not decode), with ktstr's
//	                the stream is damaged   init-stage classification from LIFE
//	inconclusive    INCONCLUSIVE            an Inconclusive outcome in TEST
//	skip            SKIP                    a Skip outcome in TEST
//
// A kernel splat fails the run by default: a WARN, BUG, KASAN report,
// lockdep report, RCU stall, hung task or lockup means the kernel saw
// something wrong while the scheduler ran, and a run that saw it cannot
// be called a pass. Config.SplatStatus can make splats inconclusive
// instead, and Config.Splats chooses the patterns.
//
// When several findings share the run's status, the headline cause is
// the first in the order of the table above.
//
// # Bounds
//
// Nothing the guest sends grows the folder's memory or makes the report
// unreadable: it keeps the first few of each kind and counts the rest
// (the report says "and N more"), and folding is linear in the input.
// At most 20 findings per status from the TEST outcomes, 16 distinct
// splats (further splat lines are counted), 256 steps
// (Verdict.StepsNotListed counts the rest), the first SCDX exit code and
// a count, the first sched_ext "disabled" line with an error reason and a
// count of the others, the last 400 lines of each log (200 reported);
// guest strings in findings and log lines are cut at 4096 bytes. The text
// report lists at most 50 cgroups, passes, notes and measurements.
//
// # Guest text
//
// Every string of a Verdict that the guest or a file name could choose
// goes through sanitize.String when the Verdict is made (findings,
// reasons, the result's strings, log tails), and the writers pass what
// they print through it again, so that no report, the strings of the
// JSON report included, can steer a terminal. Matching (splats, panics,
// sched_ext messages) sees the text as the guest wrote it, ill-formed
// UTF-8 replaced as ktstr-wire(5) says.
//
// # Determinism
//
// A Verdict depends only on the records' content and the console files:
// "at_ns" and the wall clock are never read, maps are written with sorted
// keys, so a recording replayed twice gives byte-identical JSON, JUnit
// and TAP reports.
package verdict
