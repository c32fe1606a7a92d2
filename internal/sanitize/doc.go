// Package sanitize makes text that came from the guest safe to show on a
// terminal, in a log line or in a report. The guest controls every byte
// it sends (frames, kernel messages, console lines); printed raw, a
// string could retitle the window, clear the screen, move the cursor to
// overwrite a verdict line, reorder what follows it with bidirectional
// overrides, or start a new line that looks like the tool's own output.
//
// String and Bytes are the one sanitiser every ktstr tool uses for such
// text. They return valid UTF-8 made of printable characters only:
//
//	input                                  output
//	ill-formed UTF-8                       U+FFFD per maximal ill-formed subpart,
//	                                       as Rust's String::from_utf8_lossy and
//	                                       ktstr-wire(5); a raw C1 byte such as
//	                                       0x9B (an 8-bit CSI) is ill-formed
//	C0 controls U+0000-U+001F, DEL U+007F  \xHH       (\x1b, \x0a, \x09, \x7f)
//	C1 controls U+0080-U+009F              \uHHHH     (\u009b)
//	bidi embeddings and overrides          \uHHHH     (\u202a-\u202e)
//	U+202A-U+202E, isolates U+2066-U+2069
//	line and paragraph separators          \uHHHH     (\u2028, \u2029)
//	U+2028, U+2029
//	anything else                          unchanged
//
// The escapes are for people to read, not to be decoded: a backslash in
// the input is left as it is, so the text "\x1b" and an escaped ESC look
// the same, and neither does anything to a terminal. Newlines and tabs
// are escaped too, so one string is always one line; callers that show
// multi-line text split it into lines first.
//
// The output is made only of characters that String leaves unchanged,
// so String(String(s)) == String(s).
package sanitize
