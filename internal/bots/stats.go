package bots

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/multijuego/multijuego/internal/procstat"
)

// histogram records latencies in 50 µs buckets up to 5 s (exact enough for
// percentiles in ms with two decimals) plus the exact maximum. One
// goroutine owns each histogram; they are merged at the end.
type histogram struct {
	counts []uint32
	n      uint64
	maxUs  int64
}

const (
	histBucketUs = 50
	histBuckets  = 5_000_000 / histBucketUs
)

func newHistogram() *histogram { return &histogram{counts: make([]uint32, histBuckets+1)} }

func (h *histogram) record(us int64) {
	if us < 0 {
		us = 0
	}
	i := us / histBucketUs
	if i > histBuckets {
		i = histBuckets
	}
	h.counts[i]++
	h.n++
	if us > h.maxUs {
		h.maxUs = us
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.maxUs = max(h.maxUs, o.maxUs)
}

// quantileMs is the upper edge of the bucket holding quantile q, in ms.
func (h *histogram) quantileMs(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var cum uint64
	for i, c := range h.counts {
		cum += uint64(c)
		if cum >= rank {
			if i == histBuckets {
				return float64(h.maxUs) / 1000
			}
			return math.Min(float64((i+1)*histBucketUs), float64(h.maxUs)) / 1000
		}
	}
	return float64(h.maxUs) / 1000
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
}

func (h *histogram) latency() Latency {
	return Latency{P50: h.quantileMs(0.50), P90: h.quantileMs(0.90), P99: h.quantileMs(0.99), Max: float64(h.maxUs) / 1000, Count: h.n}
}

// --- CPU and memory ---------------------------------------------------------

// selfCPU is this process's user+system CPU time (0 if unknown).
func selfCPU() time.Duration {
	d, err := procstat.CPUTime()
	if err != nil {
		return 0
	}
	return d
}

// clockTick is the kernel's USER_HZ, 100 on every Linux this runs on.
const clockTick = 100

// machineBusy returns the busy and total CPU time of the machine from
// /proc/stat (busy excludes idle and iowait).
func machineBusy() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		sum += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	tick := time.Second / clockTick
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick
}

// procCPU is a process's user+system CPU time from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// Fields after the command: state(0) ... utime(11) stime(12).
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / clockTick), nil
}

// procRSS is a process's resident set size in bytes.
func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// --- the server's tick histogram ---------------------------------------------

// tickHistogramName is the server's Prometheus histogram of match tick
// durations (seconds), labelled by mode.
const tickHistogramName = "multijuego_match_tick_seconds"

// promHistogram is the cumulative buckets of one scrape: upper bound ->
// count, summed over the series of one mode.
type promHistogram map[float64]float64

// scrapeTicks reads the tick histogram for mode from Prometheus text
// endpoints (comma-separated: the game nodes of a split deployment) and
// adds them up.
func scrapeTicks(ctx context.Context, hc *http.Client, urls, mode string) (promHistogram, error) {
	sum := promHistogram{}
	for _, url := range strings.Split(urls, ",") {
		h, err := scrapeTicksOf(ctx, hc, strings.TrimSpace(url), mode)
		if err != nil {
			return nil, err
		}
		for b, c := range h {
			sum[b] += c
		}
	}
	return sum, nil
}

func scrapeTicksOf(ctx context.Context, hc *http.Client, url, mode string) (promHistogram, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return parseTickHistogram(res.Body, mode)
}

func parseTickHistogram(r io.Reader, mode string) (promHistogram, error) {
	h := promHistogram{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := tickHistogramName + "_bucket{"
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(line, "} ")
		if !ok {
			continue
		}
		var le string
		match := mode == ""
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "le":
				le = v
			case "mode":
				match = match || v == mode
			}
		}
		if !match || le == "" {
			continue
		}
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		c, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		h[bound] += c
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("the server exports no %s histogram for mode %q", tickHistogramName, mode)
	}
	return h, nil
}

// ServerTick is the server's tick duration over the measurement window, in
// milliseconds, estimated from its Prometheus buckets the way
// histogram_quantile does (linear inside a bucket).
type ServerTick struct {
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Ticks float64 `json:"ticks"`
}

func tickDelta(before, after promHistogram) ServerTick {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	cum := make([]float64, len(bounds))
	for i, b := range bounds {
		cum[i] = after[b] - before[b]
	}
	if len(cum) == 0 || cum[len(cum)-1] <= 0 {
		return ServerTick{}
	}
	total := cum[len(cum)-1]
	q := func(q float64) float64 {
		rank := q * total
		lower, prev := 0.0, 0.0
		for i, b := range bounds {
			if cum[i] >= rank {
				if math.IsInf(b, 1) {
					return lower * 1000 // beyond the last finite bucket
				}
				if cum[i] == prev {
					return b * 1000
				}
				return (lower + (b-lower)*(rank-prev)/(cum[i]-prev)) * 1000
			}
			lower, prev = b, cum[i]
		}
		return lower * 1000
	}
	return ServerTick{P50: round2(q(0.5)), P90: round2(q(0.9)), P99: round2(q(0.99)), Ticks: total}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
