package session

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/telemetry"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

var testMetrics = telemetry.NewMetrics()

// endlessRows yields DataRow messages, then a ReadyForQuery every 100 rows.
type endlessRows struct {
	chunk []byte
	off   int
}

func newEndlessRows() *endlessRows {
	row := []byte{'D', 0, 0, 0, 21, 0, 2, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 3, 'a', 'b'}
	row[4] = byte(len(row) - 1)
	chunk := bytes.Repeat(row, 100)
	chunk = append(chunk, 'Z', 0, 0, 0, 5, 'I')
	return &endlessRows{chunk: chunk}
}

func (r *endlessRows) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.chunk[r.off:])
		n += c
		r.off = (r.off + c) % len(r.chunk)
	}
	return n, nil
}

// BenchmarkBackendRelay measures the backend-to-client pump on a stream of
// small DataRows: it must make no allocation per row.
func BenchmarkBackendRelay(b *testing.B) {
	s := &Session{}
	s.Metrics = testMetrics
	s.Log = slog.New(slog.DiscardHandler)
	s.br = wire.NewReader(newEndlessRows(), 8192, 1<<30)
	s.in = s.br
	s.cw = bufio.NewWriterSize(io.Discard, 8192)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.relayBackendMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// endlessDataRows yields DataRow messages only.
type endlessDataRows struct {
	row []byte
	off int
}

func (r *endlessDataRows) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.row[r.off:])
		n += c
		r.off = (r.off + c) % len(r.row)
	}
	return n, nil
}

// BenchmarkBackendRelayWithPolicies measures the same pump in a session
// with a policy chain, answering an Execute whose statement asked for no
// result hook: rows still stream as raw frames, without allocating.
func BenchmarkBackendRelayWithPolicies(b *testing.B) {
	s := &Session{}
	s.Metrics = testMetrics
	s.Log = slog.New(slog.DiscardHandler)
	s.tr = newTracker()
	row := []byte{'D', 0, 0, 0, 21, 0, 2, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 3, 'a', 'b'}
	row[4] = byte(len(row) - 1)
	s.br = wire.NewReader(&endlessDataRows{row: bytes.Repeat(row, 64)}, 8192, 1<<30)
	s.in = s.br
	s.cw = bufio.NewWriterSize(io.Discard, 8192)
	o := s.ops.get()
	o.kind = opExecute
	s.ops.push(o, nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.relayBackendMessage(); err != nil {
			b.Fatal(err)
		}
	}
}
