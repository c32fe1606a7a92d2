// Package msgp is ktstr-go's one msgpack layer: the chosen library,
// github.com/vmihailenco/msgpack/v5, with the project's own bounds.
//
// The library's streaming Decoder reads every msgpack format, but it
// trusts the lengths it reads: asked to decode a slice, it preallocates
// what the header announces (1.5 GiB for a 15-byte TEST payload that
// announced 2^24 outcomes), and its Skip recurses without a bound. A
// Decoder here uses only the library's primitives (PeekCode,
// DecodeMapLen, DecodeArrayLen, DecodeBytesLen, DecodeInt64, ...) and
// checks, before anything is read into or sized by a length:
//
//	bound          checked when                     Limits field
//	depth          a map or array is entered        Depth (the outermost counts 1)
//	entries        a map or array header is read    Elems (0: no count bound)
//	string bytes   a str header is read             Str   (0: no bound)
//	binary bytes   a bin header is read             Bin   (0: no bound)
//	bytes left     any length is read (buffer)      always, for a buffer
//
// Over a buffer (NewBytes: a frame's payload) every length is also
// checked against the bytes that are left, so nothing is ever allocated
// that the buffer could not fill. Over a stream (NewStream: the record
// stream) the length of what is left is not known: strings and byte
// strings grow with the bytes that actually arrive, 64 KiB at a time, and
// skipped values are discarded without being stored.
//
// Skip passes over a value of any shape iteratively, with a stack as deep
// as Limits.Depth, and allocates nothing.
//
// What a decoded value means is the caller's business (lib/wire/payload
// maps msgpack onto Go structs, lib/record onto its key table); so are
// the rules the callers share and document once, in ktstr-wire(5) and
// ktstr-records(5): a map must not carry a key twice, unknown keys are
// skipped, and a value of the wrong type is an error (a *TypeError here).
//
// Writers use NewEncoder: the library's Encoder with the smallest integer
// formats and sorted map keys, so that equal values give equal bytes.
package msgp
