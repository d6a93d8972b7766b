package persist_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/procstat"
)

// cpuUse is CPU time spent so far by this process and by the machine's
// PostgreSQL server (every process named postgres: the backends, and through
// the postmaster's children counters the backends that have exited). A
// benchmark reports the difference over its timed part per event, a figure
// that moves less with the machine's noise than wall time.
type cpuUse struct{ self, postgres time.Duration }

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux the benchmarks run on.
const clockTick = 100

func sampleCPU() cpuUse {
	var u cpuUse
	u.self, _ = procstat.CPUTime()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open || s[open+1:close] != "postgres" {
			continue
		}
		f := strings.Fields(s[close+1:])
		// After the name: state is field 3 of the line; utime, stime,
		// cutime and cstime are fields 14 to 17.
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			u.postgres += time.Duration(n) * time.Second / clockTick
		}
	}
	return u
}
