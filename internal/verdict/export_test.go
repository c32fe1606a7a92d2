package verdict

// SetEveryLineMatters turns the scan of the scheduler's output off (on
// is true) or back on, for a reference fold; it returns the old setting.
func SetEveryLineMatters(on bool) bool {
	old := everyLineMatters
	everyLineMatters = on
	return old
}
