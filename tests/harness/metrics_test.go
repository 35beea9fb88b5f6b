package harness

import (
	"maps"
	"testing"
)

func TestParseSeries(t *testing.T) {
	for _, c := range []struct {
		in     string
		name   string
		labels map[string]string
	}{
		{"pgproxy_up", "pgproxy_up", map[string]string{}},
		{`pgproxy_errors_total{class="42"}`, "pgproxy_errors_total", map[string]string{"class": "42"}},
		{`m{a="x, y", b = "z"}`, "m", map[string]string{"a": "x, y", "b": "z"}},
		{`m{}`, "m", map[string]string{}},
	} {
		name, labels, err := ParseSeries(c.in)
		if err != nil || name != c.name || !maps.Equal(labels, c.labels) {
			t.Errorf("ParseSeries(%s) = %q, %v, %v; want %q, %v", c.in, name, labels, err, c.name, c.labels)
		}
	}
	for _, bad := range []string{`m{a="x"`, `m{a=x}`, `m{a="x}`, `m{a}`} {
		if _, _, err := ParseSeries(bad); err == nil {
			t.Errorf("ParseSeries(%s) accepted", bad)
		}
	}
}
