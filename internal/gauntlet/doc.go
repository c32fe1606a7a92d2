// Package gauntlet is many runs as one: the matrix of kernels ×
// schedulers × topologies × scenarios, each cell repeated, sliced into
// shards, and the aggregate of the runs' verdicts. The runs themselves
// are ktstr-run pipelines that scripts/ktstr-gauntlet hands to GNU
// parallel; this package plans them (ktstr-matrix) and aggregates what
// they recorded (ktstr-verdict over a gauntlet's directory).
//
// # The matrix
//
// A Spec lists each axis as the user wrote it, on the command line or in
// a matrix file (ParseMatrix). Plan resolves the values (kernel names
// project and debian, scheduler names in the schedulers cache, scenario
// files, preset topologies), hashes every kernel, scheduler and scenario
// file, and expands the cells in a fixed order: kernel, then scheduler,
// then topology, then scenario. A cell that cannot run is skipped with
// the reason, never run and never failed: the scenario's requires that
// the topology does not meet, a topology above the vCPU budget or beyond
// the backend, a sched_ext scheduler on a kernel without sched_ext.
//
// # Shards
//
// Shard I/N keeps every N-th cell, starting with the I-th: the runnable
// cells and the skipped cells are dealt round-robin separately, so every
// shard gets its share of the work. The shards of one N are disjoint and
// together are the whole matrix, for any N.
//
// # A gauntlet's directory
//
//	gauntlet.json            the Manifest: axes resolved, cells, runs
//	jobs                     the job files in the order they run
//	runs/CELL/rK/job.json    one run (Job): ktstr-boot's options, files to verify
//	runs/CELL/rK/scenario.json  the scenario's JSON as planned
//	runs/CELL/rK/frames      raw frames (ktstr-drain)
//	runs/CELL/rK/records     records (ktstr-dispatch)
//	runs/CELL/rK/console.log, com2.log, noise.json
//	runs/CELL/rK/verdict.json   the live verdict; written last: the run ended
//	runs/CELL/rK/command     the exact command that runs the cell again
//	runs/CELL/rK/stderr.log  the tools' diagnostics
//	runs/CELL/rK/repro/      a failed run's self-contained re-run (Job.Repro)
//	report.txt, report.json, junit.xml, report.tap, index.html
//
// CELL is SCENARIO.TOPOLOGY.SCHEDULER.KERNEL in file-name characters.
//
// # The aggregate
//
// Load folds every run again from its recordings (records, consoles,
// noise.json) and aggregates: per cell the runs' worst status, how many
// did not pass and the failure rate with its 95% Wilson interval (so "0
// of 20", [0, 16%], reads differently from "0 of 2", [0, 66%]); every
// run counts, none is retried until green. A planned run without a
// verdict did not end (the gauntlet was stopped): the aggregate cannot
// pass then. The reports: text (a matrix per kernel, scheduler ×
// topology rows, a column per scenario), JSON, JUnit (a testsuite per
// cell, a testcase per run), TAP (a test point per run, its checks as a
// subtest) and HTML (the matrix, failures linked to their runs).
package gauntlet
