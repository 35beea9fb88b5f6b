package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// writeSummary prints the final report of a run.
func writeSummary(w io.Writer, cfg *config, r *result) {
	query := strings.Join(strings.Fields(cfg.Query), " ")
	if len(query) > 60 {
		query = query[:57] + "..."
	}
	fmt.Fprintf(w, "mode        %s, %d workers, duration %s, ramp-up %s\n", cfg.Mode, cfg.Workers, cfg.Duration, cfg.Rampup)
	fmt.Fprintf(w, "query       %s\n", query)
	fmt.Fprintf(w, "elapsed     %.2fs\n", r.Elapsed.Seconds())
	fmt.Fprintf(w, "queries     %d ok, %d errors\n", r.Queries(), r.ErrorCount())
	if steady := r.SteadyTPS(); steady > 0 {
		fmt.Fprintf(w, "tps         %.1f (after ramp-up %.1f)\n", r.TPS(), steady)
	} else {
		fmt.Fprintf(w, "tps         %.1f\n", r.TPS())
	}
	h := r.Latency
	fmt.Fprintf(w, "latency     min %s  p50 %s  p95 %s  p99 %s  max %s\n",
		ms(h.Min()), ms(h.Percentile(50)), ms(h.Percentile(95)), ms(h.Percentile(99)), ms(h.Max()))
	if len(r.Errors) == 0 {
		return
	}
	fmt.Fprintln(w, "errors by SQLSTATE:")
	codes := make([]string, 0, len(r.Errors))
	for c := range r.Errors {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		e := r.Errors[c]
		fmt.Fprintf(w, "  %-8s %8d  %s\n", c, e.Count, e.Example)
	}
}

// ms formats a duration in milliseconds with microsecond resolution.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}
