package tsc

// rdtsc reads this CPU's time-stamp counter.
func rdtsc() uint64

const supported = true
