package identity

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// Service accounts the scenarios may create. pg_hba.conf of every cluster of this suite names
// them before the cluster starts, each with the method its password is stored for.
const (
	scramAccount = "svc_proxy"
	md5Account   = "svc_md5"
	// accountPass is the password of both service accounts; it is in PG_BACKEND_URL only.
	accountPass = "svc-Pa55-word"
)

// suite is what all scenarios share: one cluster and the proxy's TLS files.
type suite struct {
	pg    *harness.Cluster
	certs *harness.Certs

	// mu serialises role and database creation on shared clusters.
	mu sync.Mutex
}

// newSuite starts the shared cluster and writes the proxy's TLS files. Both end with t.
func newSuite(t *testing.T) *suite {
	certs, err := harness.GenerateCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &suite{pg: harness.StartPostgres(t, clusterOptions(false)), certs: certs}
}

// clusterOptions admits the service accounts over TCP on loopback (only over TLS when tlsOnly).
func clusterOptions(tlsOnly bool) harness.PGOptions {
	host := "host"
	if tlsOnly {
		host = "hostssl"
	}
	var hba []string
	for _, network := range []string{"127.0.0.0/8", "::1/128"} {
		hba = append(hba,
			fmt.Sprintf("%s all %s %s scram-sha-256", host, scramAccount, network),
			fmt.Sprintf("%s all %s %s md5", host, md5Account, network))
	}
	return harness.PGOptions{TLSOnly: tlsOnly, HBA: hba}
}

// superuser connects to db of c as the superuser, over the unix socket.
func superuser(ctx context.Context, c *harness.Cluster, db string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return pgx.Connect(ctx, c.SuperuserDSN(db))
}

// ensureAccount creates role name on c (or resets its password) with the password stored as
// SCRAM or MD5, so the server's pg_hba method for it can be met.
func (s *suite) ensureAccount(ctx context.Context, c *harness.Cluster, name, encryption string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := superuser(ctx, c, harness.TestDB)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET password_encryption = '"+encryption+"'"); err != nil {
		return err
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	_, err = conn.Exec(ctx, fmt.Sprintf("%s ROLE %s LOGIN PASSWORD '%s'", verb, pgx.Identifier{name}.Sanitize(), accountPass))
	if err != nil {
		return err
	}
	var stored string
	err = conn.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", name).Scan(&stored)
	if err != nil {
		return err
	}
	want := map[string]string{"scram-sha-256": "SCRAM-SHA-256$", "md5": "md5"}[encryption]
	if len(stored) < len(want) || stored[:len(want)] != want {
		return fmt.Errorf("role %s: password stored as %.14q…, want %s", name, stored, encryption)
	}
	return nil
}

// ensureDatabase creates database name on c unless it exists.
func (s *suite) ensureDatabase(ctx context.Context, c *harness.Cluster, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := superuser(ctx, c, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}
