package harness

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv("HARNESS_FAKE_PROXY") == "1" {
		fakeProxyMain()
		return
	}
	os.Exit(Run(m))
}

// fakeProxyMain stands in for pgproxy in the harness's own tests: it serves /health on
// HEALTH_CHECK_ADDR and relays LISTEN_ADDR to the host of PG_BACKEND_URL byte for byte.
// SIGTERM ends it with exit code 0.
func fakeProxyMain() {
	backend, err := url.Parse(os.Getenv("PG_BACKEND_URL"))
	if err != nil {
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Getenv("LISTEN_ADDR"))
	if err != nil {
		os.Exit(3)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	go func() { _ = http.ListenAndServe(os.Getenv("HEALTH_CHECK_ADDR"), mux) }()
	go fakeAccept(ln, backend.Host)
	os.Stdout.WriteString("fake proxy ready\n")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	os.Exit(0)
}

func fakeAccept(ln net.Listener, backend string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go fakeRelay(c, backend)
	}
}

func fakeRelay(c net.Conn, backend string) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	go func() { _, _ = io.Copy(b, c) }()
	_, _ = io.Copy(c, b)
}
