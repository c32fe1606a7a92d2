// Package msgp is ktstr-go's one msgpack layer: the chosen library,
// github.com/vmihailenco/msgpack/v5, with the project's own bounds.
//
// The library's streaming Decoder reads every msgpack format, but it
// trusts the lengths it reads: asked to decode a slice, it preallocates
// what the header announces (1.5 GiB for a 15-byte TEST payload that
// announced 2^24 outcomes), and its Skip recurses without a bound. A
// Decoder here reads the headers of maps, arrays, strings, byte strings,
// integers, bools and nil itself, from the buffer or from the stream's
// read buffer (at most 9 bytes, never more than the value needs, so a
// value at the end of what a pipe delivered never waits for the next):
// through the library's Decode calls each header cost more than the rest
// of a record, since they read a byte at a time through an interface.
// Floats, extensions and the scalars Skip passes over still go through
// the library, and the library's format codes (msgpcode) classify every
// byte. The library stays the reference: a differential test and fuzz
// target (FuzzHeadersAgreeWithTheLibrary) hold that any value the Decoder
// accepts the library reads token for token the same, ending at the same
// byte, from a buffer and from a stream cut into one-byte reads. Either
// way it checks, before anything is read into or
// sized by a length:
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
// stream) the length of what is left is not known: a string or byte
// string up to the stream's buffer size is read from that buffer once it
// has arrived, a longer one grows with the bytes that actually arrive,
// 64 KiB at a time, and skipped values are discarded without being
// stored. The Decoder consumes a stream's buffer without telling the
// bufio.Reader until Sync, one Discard per record instead of one per
// value: call Sync before reading the bufio.Reader between values.
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
