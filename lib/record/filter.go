package record

import (
	"fmt"
	"io"
)

// A Filter copies a record stream record by record, as a filter between
// ktstr-dispatch and ktstr-verdict does. The zero Filter copies every
// record unchanged, in the form it came in.
type Filter struct {
	// Keep, when set, sees every record: it may change it, or drop it
	// by returning false. An error stops the copy.
	Keep func(r *Record) (bool, error)
	// JSON, when set, chooses the output form from the input's (true:
	// JSON lines); unset, records go out in the form they came in.
	JSON func(inJSON bool) bool
}

// Copy copies the records of in to out. It flushes whenever in has
// nothing more buffered, so that a pipeline streams, and at the end. It
// returns nil at a clean end of in, an *Error for a malformed record, or
// Keep's error with the record's index.
func (f Filter) Copy(out io.Writer, in io.Reader) error {
	rd := NewReader(in)
	var w *Writer
	for n := 0; ; n++ {
		if w != nil && rd.Buffered() == 0 {
			if err := w.Flush(); err != nil { // the next Read may wait
				return err
			}
		}
		r, err := rd.Read()
		if err == io.EOF {
			if w == nil {
				return nil
			}
			return w.Flush()
		}
		if err != nil {
			return err
		}
		if w == nil {
			json := rd.JSON()
			if f.JSON != nil {
				json = f.JSON(json)
			}
			w = NewWriter(out, json)
		}
		if f.Keep != nil {
			keep, err := f.Keep(r)
			if err != nil {
				return fmt.Errorf("record %d: %w", n, err)
			}
			if !keep {
				continue
			}
		}
		if err := w.Write(r); err != nil {
			return err
		}
	}
}
