//go:build !linux

package verdict

// errnoName needs the Linux errno table; elsewhere negative codes are
// printed without a name.
func errnoName(int32) string { return "" }
