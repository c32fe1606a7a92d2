// Package payload encodes the structured frame payloads that ktstr writes
// with a Rust-only format (postcard): TEST (AssertResult), PMET
// (PayloadMetrics), RAWO (RawPayloadOutput), KORQ (KernelOpRequest) and
// KORP (KernelOpReply); and ktstr-go's own host-origin HDMP (HostDump) and
// HMON (Monitor). ktstr-go carries them as msgpack maps with string
// keys, so that a guest agent or a filter in any language can read and
// write them. ktstr-wire(5) lists the same keys.
//
// # Encoding
//
// A payload is exactly one msgpack map. The Marshal functions write the
// keys in the order listed below (the struct's declaration order, as
// postcard does), leave out empty optional keys, sort the keys of nested
// maps and use the smallest integer encodings, so equal values give equal
// bytes.
//
// The Unmarshal functions are strict where the wire is hostile and lenient
// where a newer writer may add things. They accept keys in any order,
// skip unknown keys (which must still be well-formed msgpack), read nil as
// the zero value and accept any integer width, an integer for a float and
// bin for a string. They reject anything that does not fit: an integer
// out of its field's range, a float for an integer, a key that one map
// carries twice (known or not: the same rule as ktstr-records(5)), a
// missing required key, a string or map key that is not UTF-8 (postcard
// refuses such a String in ktstr; only RAWO's stdout, stderr and hint are
// made valid instead), nesting deeper than MaxDepth, more than MaxElems
// entries in one map or array, a length longer than the bytes left, and
// trailing bytes. They never allocate more than the payload's own entries
// can describe, whatever a length says: they decode through the bounded
// msgpack layer of internal/msgp, which checks every length before the
// library reads or allocates by it. Every error is a *DecodeError
// that wraps ErrDecode and wire.ErrPayloadSize or wire.ErrPayloadValue.
//
// # TEST: AssertResult
//
//	key            type                 required  meaning
//	scenario       string               no        scenario name
//	outcomes       array of Outcome     yes       nil or empty means pass
//	passes         array of PassDetail  no        checks that passed
//	stats          ScenarioStats        no
//	measurements   map string -> float  no        named values, keys sorted
//	info_notes     array of string      no
//	scheduler      SchedulerInfo        no        the scheduler under test
//	stats_after_detach ScenarioStats    no        after it was lost
//	machine        Machine              no        the shape the guest's kernel reported
//
//	Outcome:       verdict (string: skip, pass, inconclusive, fail; required
//	               to be one of them), kind (string, optional), message
//	               (string, optional)
//	PassDetail:    check (string), message (string, optional)
//	ScenarioStats: cgroups (array of CgroupStats, optional), workers (int),
//	               cpus (int), migrations (u64), worst_spread_pct (float),
//	               worst_gap_ms (float), total_iterations (u64),
//	               cross_llc_migrations and cross_node_migrations (u64,
//	               optional), and the performance figures below, the
//	               whole scenario's (rates added up, latencies merged)
//	CgroupStats:   name (string), workers (int), cpus (int), iterations
//	               (u64), migrations (u64), run_ns (u64), wait_ns (u64),
//	               spread_pct (float), max_gap_ms (float); optional:
//	               cross_llc_migrations, cross_node_migrations (u64: CPU
//	               changes across an LLC or node), page_locality (float:
//	               share of resident pages on the nodes the workers ran on),
//	               and the performance figures
//	performance:   optional, absent when not measured: iteration_rate
//	               (float: throughput, iterations per second of each
//	               worker's window, added up), work_rate (float: the
//	               slowest worker's iterations per second), throughput_cv
//	               (float: the largest coefficient of variation of a
//	               worker's iterations per 100 ms slice), wake_latency,
//	               timer_latency and request_latency (Latency: the
//	               wake_latency, timer_latency and open_loop workers'
//	               histograms merged; request_latency's count over the
//	               window is the request throughput)
//	Latency:       count (u64), mean_ns (float), p50_ns, p90_ns, p99_ns,
//	               p999_ns, max_ns (u64: percentiles of a log-bucketed
//	               histogram, exact below 128 ns, at most 1/64 above the
//	               true value; max exact), cv (float: standard deviation
//	               over mean); optional: sched_wait_ns and sched_slices
//	               (u64: the recording workers' schedstat run-queue wait
//	               and times on a CPU, a cross-check of mean_ns)
//	SchedulerInfo: binary (string), sha256 (string), ops (string),
//	               enable_seq (i64), attach_ms (float), detached
//	               (SchedDetach, optional)
//	SchedDetach:   at_ms (float), for_ms (float), how (string), state
//	               (string), ops (string), enable_seq (i64), kernel
//	               (string), kernel_s (float), alive (bool),
//	               reattached_ms (float, optional)
//	Machine:       shape (string "N,L,C,T", optional: absent when not
//	               uniform), cpus (int), llcs and nodes (arrays of CPU lists
//	               such as "0-3", optional), smt (bool, optional)
//
// An outcome of kind "infrastructure" (with verdict fail) says the harness
// failed, not the scheduler: the guest did not get the machine it was
// given. The verdict reports it as an infrastructure error.
//
// The outcomes fold with ktstr's precedence Fail > Inconclusive > Pass >
// Skip; an empty list is Pass. Because the key must be present, a payload
// that lost its outcomes never reads as a pass.
//
// # PMET: PayloadMetrics
//
//	key            type             required  meaning
//	payload_index  u32              no        the payload's position in the scenario
//	payload        string           no        the payload's name (UTF-8)
//	exit_code      i32              yes       the payload's exit code
//	metrics        array of Metric  no
//
//	Metric:        name (string, non-empty UTF-8, at most 256 bytes),
//	               value (float, finite), unit (string, optional, at most
//	               256 bytes), polarity (string, optional: higher_better or
//	               lower_better; absent means unknown)
//
// # RAWO: RawPayloadOutput
//
//	key            type    required  meaning
//	payload_index  u32     no
//	payload        string  no        the payload's name (UTF-8, at most 256 bytes)
//	exit_code      i32     yes
//	stdout         string  no        captured text; ill-formed UTF-8 is replaced
//	stderr         string  no        as by Rust's String::from_utf8_lossy
//	hint           string  no        what the output is, for a metric extractor
//
// # KORQ: KernelOpRequest
//
//	key         type                   required  meaning
//	request_id  u32                    yes
//	mode        string                 yes       hot or cold
//	direction   string                 yes       write or read
//	tag         string                 no        the host cuts it at 256 bytes
//	entries     array of KernelOpEntry no
//
//	KernelOpEntry: target (Target), value (Value)
//	Target:        kind (string: symbol, direct, kva, per_cpu_field,
//	               task_field), symbol (string), addr (u64), field (string),
//	               cpu (u32), pid (u32), start_time_ns (u64); only the keys
//	               the kind uses are written
//	Value:         kind (string: u32, u64, bytes, or_u32), u (u64; at most
//	               2^32-1 for u32 and or_u32), bytes (bin). For a read, the
//	               kind gives the width and the content is ignored.
//
// # KORP: KernelOpReply
//
//	key          type            required  meaning
//	request_id   u32             yes       echoed from the request
//	success      bool            yes
//	reason       string          no        why it failed; should be at most 256 bytes
//	read_values  array of Value  no        one per entry for a read
//
// A KORP payload may be at most KernelOpReplyMax (1 MiB); the size is
// checked before anything is decoded.
//
// # HDMP: HostDump (host origin, ktstr-boot's failure dump)
//
//	key        type             required  meaning
//	path       string           yes       the dump's file (ktstr-snapshot(5))
//	reason     string           yes       why ktstr-boot took it
//	summary    array of string  no        what each CPU ran, sched_ext state
//	stuck_cpu  int              no        CPU of the longest-waiting runnable task; -1 none
//
// # HMON: Monitor (host origin, host-side monitor samples)
//
//	key          type                       required  meaning
//	interval_ms  u64                        no        sampling period
//	thresholds   MonitorThresholds          yes       the checks
//	samples      array of MonitorSample     yes
//
//	MonitorThresholds: max_imbalance_ratio (float), max_local_dsq_depth
//	(u64), fail_on_rq_clock_stuck (bool), sustained_samples (u64).
//	MonitorSample: t_ms (u64, since the VM started), cpus (array per CPU of
//	[nr_running, local_dsq_depth, rq_clock_ns]; empty when unreadable).
package payload
