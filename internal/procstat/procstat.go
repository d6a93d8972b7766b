// Package procstat reads this process's CPU time, on every platform the
// binary builds for (getrusage on Unix, GetProcessTimes on Windows).
package procstat

import "time"

// CPUTime returns the user plus system CPU time this process has used.
func CPUTime() (time.Duration, error) { return cpuTime() }
