package harness

import (
	"path/filepath"
	"testing"
)

func TestStartRedis(t *testing.T) {
	t.Parallel()
	addr := StartRedis(t)
	if err := pingRedis(addr, false); err != nil {
		t.Fatal(err)
	}
}

func TestRedisRestartKeepsPort(t *testing.T) {
	t.Parallel()
	r := StartRedisWith(t, RedisOptions{})
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := pingRedis(r.Addr, false); err == nil {
		t.Fatal("PING answered after Kill")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if err := pingRedis(r.Addr, false); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil { // a paused server stops too
		t.Fatal(err)
	}
}

func TestStartRedisTLS(t *testing.T) {
	t.Parallel()
	certs, err := GenerateCerts(filepath.Join(t.TempDir(), "certs"))
	if err != nil {
		t.Fatal(err)
	}
	r := StartRedisWith(t, RedisOptions{TLS: certs})
	if err := pingRedis(r.Addr, true); err != nil {
		t.Fatal(err)
	}
	if err := pingRedis(r.Addr, false); err == nil {
		t.Fatal("plaintext PING answered by a TLS-only server")
	}
}
