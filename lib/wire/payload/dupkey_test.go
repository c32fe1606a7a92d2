package payload

import (
	"strings"
	"testing"
)

// TestDuplicateKeys: one rule for every map a reader decodes (ktstr-wire(5),
// ktstr-records(5)): a key twice is refused, whether the reader knows the
// key or not, so that two readers can never see two different payloads.
func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"known", mp("82", "'outcomes", "c0", "'outcomes", "90")},
		{"unknown", mp("83", "'outcomes", "c0", "'future", "01", "'future", "02")},
		{"unknown in a nested struct", mp("82", "'outcomes", "91", "83", "'verdict", "'pass", "'x", "c0", "'x", "c0", "'stats", "c0")},
		{"measurement", mp("82", "'outcomes", "c0", "'measurements", "82", "'a", "01", "'a", "02")},
	} {
		_, err := UnmarshalAssertResult(tc.in)
		if err == nil || !strings.Contains(err.Error(), "duplicate key") {
			t.Errorf("%s: UnmarshalAssertResult(%x) = %v, want a duplicate key error", tc.name, tc.in, err)
		}
	}
}
