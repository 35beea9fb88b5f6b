package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func msg(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	b = append(b, body...)
	n := len(b) - 1
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

func TestReaderNextAndStream(t *testing.T) {
	var in bytes.Buffer
	in.Write(msg('Q', "select 1\x00"))
	in.Write(msg('D', string(bytes.Repeat([]byte("x"), 100_000))))
	in.Write(msg('Z', "I"))
	// One byte per Read: framing must not depend on how the kernel splits data.
	r := NewReader(iotest.OneByteReader(&in), 16, 1<<20)
	typ, m, err := r.Next()
	if err != nil || typ != 'Q' || string(m[5:]) != "select 1\x00" {
		t.Fatalf("Next = %q %q %v", typ, m, err)
	}
	var out bytes.Buffer
	if err := r.Stream(&out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 5+100_000 || out.Bytes()[0] != 'D' {
		t.Fatalf("streamed %d bytes", out.Len())
	}
	if typ, _, err := r.Next(); typ != 'Z' || err != nil {
		t.Fatalf("third message %q %v", typ, err)
	}
	if _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF at a boundary, got %v", err)
	}
}

func TestReaderLimitAndTruncation(t *testing.T) {
	r := NewReader(bytes.NewReader(msg('Q', string(make([]byte, 2000)))), 64, 1000)
	if _, _, err := r.Next(); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("want ErrMessageTooLarge, got %v", err)
	}
	r = NewReader(bytes.NewReader([]byte{'Q', 0, 0, 0, 2}), 64, 1000)
	if _, _, err := r.Next(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("length below 4: want ErrProtocol, got %v", err)
	}
	r = NewReader(bytes.NewReader(msg('Q', "abc")[:6]), 64, 1000)
	if _, _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut message: want ErrUnexpectedEOF, got %v", err)
	}
}

func TestBeforeBlockRunsOnlyWhenInputIsDrained(t *testing.T) {
	var in bytes.Buffer
	for range 10 {
		in.Write(msg('D', "row"))
	}
	flushes := 0
	r := NewReader(&in, 4096, 1<<20)
	r.BeforeBlock = func() error { flushes++; return nil }
	for range 10 {
		if err := r.Stream(io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if flushes != 1 {
		t.Fatalf("10 buffered messages caused %d blocking reads, want 1", flushes)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestStreamReportsWriteErrors(t *testing.T) {
	r := NewReader(bytes.NewReader(msg('D', "row")), 64, 1<<20)
	err := r.Stream(failWriter{})
	var we *WriteError
	if !errors.As(err, &we) || r.Partial {
		t.Fatalf("want WriteError before anything was written, got %v partial=%v", err, r.Partial)
	}
}

// BenchmarkStreamDataRow relays small DataRows the way the backend pump
// does; it must not allocate per row.
func BenchmarkStreamDataRow(b *testing.B) {
	row := msg('D', "\x00\x02\x00\x00\x00\x05hello\x00\x00\x00\x03abc")
	src := &repeatReader{chunk: bytes.Repeat(row, 256)}
	r := NewReader(src, 8192, 1<<20)
	w := bufio.NewWriterSize(io.Discard, 8192)
	r.BeforeBlock = w.Flush
	b.ReportAllocs()
	b.SetBytes(int64(len(row)))
	for b.Loop() {
		if err := r.Stream(w); err != nil {
			b.Fatal(err)
		}
	}
}

type repeatReader struct {
	chunk []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.chunk[r.off:])
		n += c
		r.off = (r.off + c) % len(r.chunk)
	}
	return n, nil
}
