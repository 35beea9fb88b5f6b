//go:build linux

package transparent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// The test binary doubles as a pgx client that the scenarios start inside a cgroup or a
// network namespace (a goroutine of the test process cannot change its cgroup). TestMain runs
// helperMain when helperEnv is set; the client prints JSON lines on stdout.
const (
	helperEnv     = "PGPT_HELPER"       // peer | checksum | loop
	helperDSNEnv  = "PGPT_DSN"          // where to connect
	helperHoldEnv = "PGPT_HOLD_QUERY"   // peer: a statement to run after reporting (keeps the session)
	helperSecsEnv = "PGPT_LOOP_SECONDS" // loop: how long to keep connecting
)

// peerReport is what mode peer prints: the socket's view (getpeername, getsockname) and the
// server's view of the same session.
type peerReport struct {
	Remote      string `json:"remote"`       // getpeername: the address the client sees
	Local       string `json:"local"`        // getsockname
	BackendAddr string `json:"backend_addr"` // inet_client_addr() on the server
	BackendPort int    `json:"backend_port"` // inet_client_port() on the server
	Error       string `json:"error,omitempty"`
}

// checksumReport is what mode checksum prints.
type checksumReport struct {
	Rows   int    `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	Error  string `json:"error,omitempty"`
}

// attempt is one connection of mode loop.
type attempt struct {
	At          int64  `json:"at_ms"` // Unix milliseconds when the attempt started
	OK          bool   `json:"ok"`
	Error       string `json:"error,omitempty"`
	LocalPort   int    `json:"local_port"`
	BackendPort int    `json:"backend_port"`
}

// checksumQuery returns about 10 MB: 10 240 rows of 1 KiB.
const checksumQuery = `SELECT i, repeat(md5(i::text), 32) FROM generate_series(1, 10240) AS i ORDER BY i`

func helperMain() int {
	dsn := os.Getenv(helperDSNEnv)
	enc := json.NewEncoder(os.Stdout)
	switch os.Getenv(helperEnv) {
	case "peer":
		r := helperPeer(dsn)
		_ = enc.Encode(r)
		if r.Error != "" {
			return 1
		}
	case "checksum":
		r := helperChecksum(dsn)
		_ = enc.Encode(r)
		if r.Error != "" {
			return 1
		}
	case "loop":
		secs, _ := strconv.ParseFloat(os.Getenv(helperSecsEnv), 64)
		end := time.Now().Add(time.Duration(secs * float64(time.Second)))
		for time.Now().Before(end) {
			_ = enc.Encode(helperAttempt(dsn))
			time.Sleep(50 * time.Millisecond)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		return 2
	}
	return 0
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, dsn)
}

func helperPeer(dsn string) peerReport {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err != nil {
		return peerReport{Error: err.Error()}
	}
	defer conn.Close(context.Background())
	nc := conn.PgConn().Conn()
	r := peerReport{Remote: nc.RemoteAddr().String(), Local: nc.LocalAddr().String()}
	if err := conn.QueryRow(ctx, `SELECT coalesce(host(inet_client_addr()), ''), coalesce(inet_client_port(), 0)`).
		Scan(&r.BackendAddr, &r.BackendPort); err != nil {
		r.Error = err.Error()
		return r
	}
	if q := os.Getenv(helperHoldEnv); q != "" {
		if _, err := conn.Exec(ctx, q); err != nil {
			r.Error = err.Error()
		}
	}
	return r
}

func helperChecksum(dsn string) checksumReport {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err != nil {
		return checksumReport{Error: err.Error()}
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, checksumQuery, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return checksumReport{Error: err.Error()}
	}
	h := sha256.New()
	var r checksumReport
	for rows.Next() {
		for _, v := range rows.RawValues() {
			h.Write(v)
			h.Write([]byte{0})
			r.Bytes += int64(len(v))
		}
		r.Rows++
	}
	if err := rows.Err(); err != nil {
		r.Error = err.Error()
	}
	r.SHA256 = hex.EncodeToString(h.Sum(nil))
	return r
}

func helperAttempt(dsn string) attempt {
	a := attempt{At: time.Now().UnixMilli()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	defer conn.Close(context.Background())
	if tcp, ok := conn.PgConn().Conn().LocalAddr().(*net.TCPAddr); ok {
		a.LocalPort = tcp.Port
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(inet_client_port(), 0)`).Scan(&a.BackendPort); err != nil {
		a.Error = err.Error()
		return a
	}
	a.OK = true
	return a
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
