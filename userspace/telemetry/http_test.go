package telemetry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestReadinessFollowsProbeAndDrain(t *testing.T) {
	m := NewMetrics()
	var probeErr error
	h := NewHealth(m, func(context.Context) error { return probeErr })
	mux := h.Handler(false)
	if code, _ := get(t, mux, "/ready"); code != 200 {
		t.Fatalf("/ready = %d with a healthy backend", code)
	}
	probeErr = errors.New("connection refused")
	if code, body := get(t, mux, "/ready"); code != 503 || !strings.Contains(body, "connection refused") {
		t.Fatalf("/ready = %d %q with the backend down", code, body)
	}
	probeErr = nil
	h.SetDraining()
	if code, _ := get(t, mux, "/ready"); code != 503 {
		t.Fatalf("/ready = %d while draining", code)
	}
	if code, _ := get(t, mux, "/health"); code != 200 {
		t.Fatalf("/health = %d while draining; liveness must not fail", code)
	}
	if code, _ := get(t, mux, "/debug/pprof/"); code == 200 {
		t.Fatal("pprof served without ENABLE_PPROF")
	}
}

func TestMetricsNames(t *testing.T) {
	m := NewMetrics()
	m.Error([]byte("42601"))
	m.AuthFailure("invalid_password")
	m.Rejected("rate_limited")
	m.Registry.MustRegister(NewMapCollector("pgproxy_bpf_", "test", func() (map[string]uint64, error) {
		return map[string]uint64{"connect4_redirects": 3}, nil
	}))
	_, body := get(t, NewHealth(m, nil).Handler(false), "/metrics")
	for _, want := range []string{
		`pgproxy_errors_total{class="42"} 1`,
		`pgproxy_auth_failures_total{reason="invalid_password"} 1`,
		`pgproxy_rejected_connections_total{reason="rate_limited"} 1`,
		`pgproxy_bpf_connect4_redirects_total 3`,
		`pgproxy_client_connections_active 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
