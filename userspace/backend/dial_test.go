package backend

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// fakeServer answers one SSLRequest with answer and then holds the connection.
func fakeServer(t *testing.T, answer byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req [8]byte
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		c.Write([]byte{answer})
		io.Copy(io.Discard, c)
	}()
	return ln.Addr().String()
}

func TestDialSSLModes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		mode    string
		answer  byte
		wantErr error
		plain   bool
	}{
		{"prefer", 'N', nil, true},
		{"require", 'N', ErrTLSRefused, false},
		{"verify-full", 'N', ErrTLSRefused, false},
	} {
		d, err := NewDialer(tc.mode, "", 2*time.Second, net.KeepAliveConfig{})
		if err != nil {
			t.Fatal(err)
		}
		conn, encrypted, err := d.Dial(ctx, fakeServer(t, tc.answer))
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("sslmode=%s, server says %q: err %v, want %v", tc.mode, tc.answer, err, tc.wantErr)
		}
		if err == nil {
			if encrypted != !tc.plain {
				t.Errorf("sslmode=%s: encrypted=%v", tc.mode, encrypted)
			}
			conn.Close()
		}
	}
}

func TestDialDisableSendsNoSSLRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	d, _ := NewDialer("disable", "", time.Second, net.KeepAliveConfig{})
	conn, encrypted, err := d.Dial(context.Background(), ln.Addr().String())
	if err != nil || encrypted {
		t.Fatalf("sslmode=disable: %v encrypted=%v", err, encrypted)
	}
	defer conn.Close()
	if b := <-got; len(b) != 0 {
		t.Fatalf("sslmode=disable sent %d bytes before the startup message", len(b))
	}
}

func TestNewDialerRejectsBadCA(t *testing.T) {
	if _, err := NewDialer("verify-full", "/nonexistent/ca.pem", time.Second, net.KeepAliveConfig{}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
