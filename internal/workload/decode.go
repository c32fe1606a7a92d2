package workload

import (
	"bytes"
	"encoding/json"
)

// UnmarshalJSON decodes a work spec strictly (a key the format does not
// have is an error) and validates it, so a decoded Work is one a worker
// can run: a scenario is checked on the host before any VM boots.
func (w *Work) UnmarshalJSON(b []byte) error {
	type plain Work // without this method
	var v plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if err := Work(v).Validate(); err != nil {
		return err
	}
	*w = Work(v)
	return nil
}
