package harness

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
)

// front is the listener of a stand-in: a free loopback port whose
// connections serve runs handle on, numbered from 1, all closed (and
// waited for) in cleanup. tls is the server side of certs' certificate.
type front struct {
	addr string
	tls  *tls.Config
	ln   net.Listener

	mu    sync.Mutex
	n     int
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newFront(t testing.TB, certs *Certs) *front {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certs.CertFile, certs.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &front{addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{},
		tls: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
}

// serve accepts connections for handle until cleanup.
func (f *front) serve(t testing.TB, handle func(c net.Conn, id int)) {
	ln := f.ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.n++
			id := f.n
			f.conns[c] = struct{}{}
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				handle(c, id)
				c.Close()
				f.mu.Lock()
				delete(f.conns, c)
				f.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
}
