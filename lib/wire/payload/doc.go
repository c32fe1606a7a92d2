// Package payload encodes the structured frame payloads that ktstr writes
// with a Rust-only format (postcard): TEST (AssertResult), PMET
// (PayloadMetrics), RAWO (RawPayloadOutput), KORQ (KernelOpRequest) and
// KORP (KernelOpReply). ktstr-go carries them as msgpack maps with the
// string keys documented on each struct and in ktstr-wire(5), so that a
// guest agent or a filter in any language can read and write them.
//
// Unknown keys are ignored when decoding, and missing keys take their zero
// value, so fields can be added without breaking older readers. Every
// decoder bounds what it accepts: lengths come from the frame, which the
// assembler has already capped, and the msgpack decoder never allocates
// more than the bytes it is given can describe.
package payload
