package generate

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressLines(t *testing.T) {
	res, values := sampleResult(t, false)
	var buf bytes.Buffer
	p := NewLines(&buf)
	p.Start(len(res.Tables))
	for i := range res.Tables {
		p.Begin(res.Tables[i].Schema, res.Tables[i].Name)
		p.Table(i+1, len(res.Tables), &res.Tables[i])
	}
	p.Finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1+len(res.Tables) {
		t.Fatalf("%d lines for %d tables:\n%s", len(lines), len(res.Tables), buf.String())
	}
	if !strings.HasPrefix(lines[1], "[1/4] public.customers: 20 rows sampled (LIMIT), 6 of 8 columns masked (6 high, 0 medium), 1 to review (") {
		t.Errorf("line %q", lines[1])
	}
	if !strings.HasPrefix(lines[4], "[4/4] warning: public.vault skipped: permission denied") {
		t.Errorf("line %q", lines[4])
	}
	for _, v := range values {
		if strings.Contains(buf.String(), v) {
			t.Errorf("progress shows the value %q", v)
		}
	}
}

func TestProgressBar(t *testing.T) {
	res, _ := sampleResult(t, false)
	var buf bytes.Buffer
	p := NewBar(&buf)
	p.Start(len(res.Tables))
	for i := range res.Tables {
		p.Begin(res.Tables[i].Schema, res.Tables[i].Name)
		p.Table(i+1, len(res.Tables), &res.Tables[i])
	}
	p.Finish()
	out := buf.String()
	for _, want := range []string{"100%", "(4/4", "warning: public.vault skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("the bar's output lacks %q: %q", want, out)
		}
	}
}
