package fastpath

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
)

// msg is one PostgreSQL message.
func msg(t byte, body []byte) []byte {
	out := make([]byte, 5, 5+len(body))
	out[0] = t
	binary.BigEndian.PutUint32(out[1:], uint32(4+len(body)))
	return append(out, body...)
}

// answer is what the stand-in backend sends for each Query: rows DataRows
// of width bytes, CommandComplete, ReadyForQuery 'I'.
func answer(rows, width int) []byte {
	var b []byte
	b = append(b, msg('T', []byte("\x00\x01c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x19\xff\xff\xff\xff\xff\xff\x00\x00"))...)
	val := bytes.Repeat([]byte{'x'}, width)
	row := make([]byte, 6, 6+width)
	binary.BigEndian.PutUint16(row, 1)
	binary.BigEndian.PutUint32(row[2:], uint32(width))
	row = append(row, val...)
	for range rows {
		b = append(b, msg('D', row)...)
	}
	b = append(b, msg('C', []byte("SELECT 1\x00"))...)
	return append(b, msg('Z', []byte{'I'})...)
}

// readMsg reads one message from r.
func readMsg(r io.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:5]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(buf[1:5])) + 1
	if n > len(buf) {
		nb := make([]byte, n)
		copy(nb, buf[:5])
		buf = nb
	}
	if _, err := io.ReadFull(r, buf[5:n]); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// backend answers every Query message on c with resp until c closes.
func backend(c net.Conn, resp []byte) {
	defer c.Close()
	buf := make([]byte, 1<<16)
	for {
		m, err := readMsg(c, buf)
		if err != nil {
			return
		}
		if m[0] == 'Q' {
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	}
}

// plainConn hides TCPConn's ReadFrom/WriteTo, so copies use read and write
// (as the proxy's relay does), not splice.
type plainConn struct{ c net.Conn }

func (p plainConn) Read(b []byte) (int, error)  { return p.c.Read(b) }
func (p plainConn) Write(b []byte) (int, error) { return p.c.Write(b) }

// pair is one client's session through the relay under test.
type pair struct {
	client    net.Conn
	r         *bufio.Reader
	sess      *Session
	closeFunc func()
}

func (p *pair) Close() { p.closeFunc() }

// tcpPair returns both ends of a new loopback TCP connection.
func tcpPair(t testing.TB) (dialed, accepted net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if dialed, err = net.Dial("tcp", l.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if accepted, err = l.Accept(); err != nil {
		t.Fatal(err)
	}
	return dialed, accepted
}

// newPairMode connects a client to a stand-in backend answering resp through
// a relay: client → backend always in userspace; backend → client in the
// kernel when path is set, else in userspace.
// With both, the client → backend direction is in the kernel too.
func newPairMode(t testing.TB, path *Path, resp []byte, both bool) *pair {
	t.Helper()
	client, pc := tcpPair(t) // the client and the relay's socket for it
	pb, bs := tcpPair(t)     // the relay's backend socket and the backend's
	go backend(bs, resp)
	p := &pair{client: client, r: bufio.NewReaderSize(client, 1<<16)}
	var err error
	var wg sync.WaitGroup
	switch {
	case path != nil && both:
		if p.sess, err = path.AddBoth(pb.(*net.TCPConn), pc.(*net.TCPConn)); err != nil {
			t.Fatal(err)
		}
	case path != nil:
		if p.sess, err = path.Add(pb.(*net.TCPConn), pc.(*net.TCPConn)); err != nil {
			t.Fatal(err)
		}
	default:
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(plainConn{pc}, plainConn{pb}); pc.Close() }()
	}
	if !both {
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(plainConn{pb}, plainConn{pc}); pb.Close() }()
	}
	p.closeFunc = func() {
		client.Close()
		if p.sess != nil {
			p.sess.Remove()
		}
		pc.Close()
		pb.Close()
		wg.Wait()
	}
	return p
}

func loadOrSkip(t testing.TB) *Path {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("fastpath: needs root for BPF (skipped: not root)")
	}
	p, err := Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var query = msg('Q', []byte("SELECT 1\x00"))

// roundTrip sends a Query and reads the answer up to ReadyForQuery,
// appending what it read to got when got is not nil.
func roundTrip(p *pair, buf []byte, got *bytes.Buffer) error {
	if _, err := p.client.Write(query); err != nil {
		return err
	}
	for {
		m, err := readMsg(p.r, buf)
		if err != nil {
			return err
		}
		if got != nil {
			got.Write(m)
		}
		if m[0] == 'Z' {
			return nil
		}
	}
}

func TestRelaysInTheKernel(t *testing.T) {
	path := loadOrSkip(t)
	for _, tc := range []struct {
		name        string
		rows, width int
	}{{"small", 1, 8}, {"many rows", 5000, 100}, {"wide rows", 20, 200_000}} {
		for _, both := range []bool{false, true} {
			name := tc.name
			if both {
				name += "/both directions"
			}
			t.Run(name, func(t *testing.T) {
				resp := answer(tc.rows, tc.width)
				p := newPairMode(t, path, resp, both)
				defer p.Close()
				buf := make([]byte, 1<<16)
				for i := range 3 {
					var got bytes.Buffer
					if err := roundTrip(p, buf, &got); err != nil {
						t.Fatalf("round trip %d: %v", i, err)
					}
					if !bytes.Equal(got.Bytes(), resp) {
						t.Fatalf("round trip %d: %d bytes differ from the %d the backend sent", i, got.Len(), len(resp))
					}
				}
				st, err := p.sess.Stats()
				if err != nil {
					t.Fatal(err)
				}
				if want := uint64(3 * (tc.rows + 3)); st.Messages != want || st.Bytes != uint64(3*len(resp)) || st.Ready != 3 || st.Status != 'I' || st.Passed != 0 {
					t.Fatalf("stats %+v, want %d messages, %d bytes, 3 ReadyForQuery, status I", st, want, 3*len(resp))
				}
			})
		}
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	path := loadOrSkip(b)
	for _, size := range []struct {
		name        string
		rows, width int
	}{{"1row", 1, 8}, {"1000rows", 1000, 100}} {
		for _, mode := range []string{"userspace", "kernel", "kernel-both"} {
			for _, clients := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%s/clients=%d", size.name, mode, clients), func(b *testing.B) {
					var use *Path
					if mode != "userspace" {
						use = path
					}
					resp := answer(size.rows, size.width)
					b.SetBytes(int64(len(resp)))
					pairs := make([]*pair, clients)
					for i := range pairs {
						pairs[i] = newPairMode(b, use, resp, mode == "kernel-both")
						defer pairs[i].Close()
					}
					b.ResetTimer()
					var wg sync.WaitGroup
					for i, p := range pairs {
						n := b.N / clients
						if i < b.N%clients {
							n++
						}
						wg.Add(1)
						go func() {
							defer wg.Done()
							buf := make([]byte, 1<<16)
							for range n {
								if err := roundTrip(p, buf, nil); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
				})
			}
		}
	}
}
