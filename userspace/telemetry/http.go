package telemetry

import (
	"context"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health answers /health, /ready and /metrics.
type Health struct {
	metrics  *Metrics
	probe    func(context.Context) error
	draining atomic.Bool
}

// NewHealth returns a handler set; probe reports whether a backend connection
// can be opened now (nil means ready).
func NewHealth(m *Metrics, probe func(context.Context) error) *Health {
	return &Health{metrics: m, probe: probe}
}

// SetDraining makes /ready answer 503 from now on.
func (h *Health) SetDraining() { h.draining.Store(true) }

// Handler returns the HTTP routes; withPprof adds /debug/pprof/.
func (h *Health) Handler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /ready", h.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.metrics.Registry, promhttp.HandlerOpts{}))
	return mux
}

func (h *Health) ready(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		http.Error(w, "draining\n", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.probe(ctx); err != nil {
		http.Error(w, "backend unavailable: "+err.Error()+"\n", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}
