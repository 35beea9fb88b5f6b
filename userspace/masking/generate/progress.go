package generate

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is told of the scan table by table. It is given names and
// counts, never values.
type Progress interface {
	// Start: total tables will be scanned.
	Start(total int)
	// Begin: a table's sample starts.
	Begin(schema, name string)
	// Table: the done-th table of total is scanned (or skipped).
	Table(done, total int, t *Table)
	// Finish: the scan is over (or failed).
	Finish()
}

type nopProgress struct{}

func (nopProgress) Start(int)              {}
func (nopProgress) Begin(string, string)   {}
func (nopProgress) Table(int, int, *Table) {}
func (nopProgress) Finish()                {}

// NewLines returns the progress for a pipe or a log: one line per table.
func NewLines(w io.Writer) Progress { return &lines{w: w} }

type lines struct {
	w     io.Writer
	begun time.Time
}

func (l *lines) Start(total int) {
	fmt.Fprintf(l.w, "scanning %d table%s\n", total, plural(total))
}

func (l *lines) Begin(string, string) { l.begun = time.Now() }

func (l *lines) Table(done, total int, t *Table) {
	fmt.Fprintf(l.w, "[%d/%d] %s (%.1fs)\n", done, total, TableSummary(t), time.Since(l.begun).Seconds())
}

func (l *lines) Finish() {}

// TableSummary is a table's outcome in one line (names and counts only).
func TableSummary(t *Table) string {
	name := safe(t.Schema) + "." + safe(t.Name)
	if t.Skipped != "" {
		return "warning: " + name + " skipped: " + t.Skipped
	}
	var high, medium, low int
	for _, f := range t.Findings {
		switch f.Confidence {
		case High:
			high++
		case Medium:
			medium++
		case Low:
			low++
		}
	}
	method := ""
	if t.Method != "" {
		method = " (" + t.Method + ")"
	}
	s := fmt.Sprintf("%s: %d row%s sampled%s, %d of %d columns masked", name, t.Sampled, plural(t.Sampled), method,
		high+medium, len(t.Findings))
	if high+medium > 0 {
		s += fmt.Sprintf(" (%d high, %d medium)", high, medium)
	}
	if low > 0 {
		s += fmt.Sprintf(", %d to review", low)
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// NewBar returns the progress for a terminal: a bar with the table being
// sampled, and warnings printed above it.
func NewBar(w io.Writer) Progress { return &bar{w: w} }

type bar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (b *bar) Start(total int) {
	b.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription("scanning"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionThrottle(50*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.w) }),
	)
}

func (b *bar) Begin(schema, name string) {
	b.bar.Describe(fmt.Sprintf("%-32s", truncate(safe(schema)+"."+safe(name), 32)))
}

func (b *bar) Table(done, total int, t *Table) {
	if t.Skipped != "" {
		b.bar.Clear()
		fmt.Fprintln(b.w, TableSummary(t))
	}
	b.bar.Set(done)
}

func (b *bar) Finish() {
	if !b.bar.IsFinished() {
		b.bar.Exit()
		fmt.Fprintln(b.w)
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// safe makes an identifier printable on one line.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
