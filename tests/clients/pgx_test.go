package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgproxy/pgproxy/tests/harness"
)

func pgxConnect(ctx context.Context, dsn string) (*pgx.Conn, error) { return pgx.Connect(ctx, dsn) }

// TestPgx uses pgx's extended protocol through the proxy: every query execution mode, binary
// parameters and results of many types, named prepared statements, transactions and CopyFrom
// (binary COPY).
func TestPgx(t *testing.T) {
	pg, proxy := startProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, proxy.DSN(harness.ScramUser, harness.ScramPass, harness.TestDB, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	t.Run("execution modes", func(t *testing.T) {
		modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
			pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
		for _, mode := range modes {
			for i := 0; i < 3; i++ { // the second run uses the cached statement or description
				var n int64
				var s string
				err := conn.QueryRow(ctx, "SELECT $1::int8 * 2, upper($2::text)", mode, int64(21+i), "abc").Scan(&n, &s)
				if err != nil || n != int64(42+2*i) || s != "ABC" {
					t.Errorf("mode %v run %d: (%d, %q), %v", mode, i, n, s, err)
				}
			}
		}
	})

	t.Run("binary round trip of many types", func(t *testing.T) {
		ts := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
		num := pgtype.Numeric{Int: big.NewInt(-1234567890123), Exp: -4, Valid: true}
		uuid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
		in := []any{int16(-7), int32(1 << 30), int64(-1 << 62), 3.25, true, "tëxt ☃", []byte{0, 1, 2, 255},
			ts, num, uuid, []int32{1, 2, 3}, map[string]any{"k": "v", "n": float64(1)}}
		sql := "SELECT $1::int2, $2::int4, $3::int8, $4::float8, $5::bool, $6::text, $7::bytea, " +
			"$8::timestamptz, $9::numeric, $10::uuid, $11::int4[], $12::jsonb"
		var (
			i2   int16
			i4   int32
			i8   int64
			f8   float64
			b    bool
			s    string
			by   []byte
			tz   time.Time
			nu   pgtype.Numeric
			uu   [16]byte
			arr  []int32
			js   map[string]any
			outs = []any{&i2, &i4, &i8, &f8, &b, &s, &by, &tz, &nu, &uu, &arr, &js}
		)
		if err := conn.QueryRow(ctx, sql, in...).Scan(outs...); err != nil {
			t.Fatal(err)
		}
		got := []any{i2, i4, i8, f8, b, s, by, tz.UTC(), nu, uu, arr, js}
		for i := range in {
			want := in[i]
			if n, ok := want.(pgtype.Numeric); ok {
				a, _ := n.Value()
				c, _ := got[i].(pgtype.Numeric).Value()
				if a != c {
					t.Errorf("numeric: got %v, want %v", c, a)
				}
				continue
			}
			if !reflect.DeepEqual(got[i], want) {
				t.Errorf("parameter %d: got %#v, want %#v", i+1, got[i], want)
			}
		}
	})

	t.Run("named prepared statement", func(t *testing.T) {
		if _, err := conn.Prepare(ctx, "clients_lookup", "SELECT $1::text || '-' || $2::int"); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			var s string
			if err := conn.QueryRow(ctx, "clients_lookup", "k", i).Scan(&s); err != nil || s != fmt.Sprintf("k-%d", i) {
				t.Errorf("run %d: %q, %v", i, s, err)
			}
		}
		if err := conn.Deallocate(ctx, "clients_lookup"); err != nil {
			t.Error(err)
		}
	})

	t.Run("transaction rolled back", func(t *testing.T) {
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS clients_pgx_tx; CREATE TABLE clients_pgx_tx (i int)"); err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO clients_pgx_tx VALUES ($1)", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO clients_pgx_tx VALUES ($1)", "not a number"); err == nil {
			t.Fatal("inserting text into an int column succeeded")
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if got := superuserValue(t, pg, "SELECT count(*) FROM clients_pgx_tx"); got != "0" {
			t.Errorf("rows after rollback: %s", got)
		}
	})

	t.Run("CopyFrom", func(t *testing.T) {
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS clients_pgx_copy; CREATE TABLE clients_pgx_copy (id int8, name text, at timestamptz, doc jsonb)"); err != nil {
			t.Fatal(err)
		}
		const n = 50000
		base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		rows := make([][]any, n)
		for i := range rows {
			doc, _ := json.Marshal(map[string]int{"i": i})
			rows[i] = []any{int64(i + 1), fmt.Sprintf("name %d", i+1), base.Add(time.Duration(i) * time.Second), string(doc)}
		}
		copied, err := conn.CopyFrom(ctx, pgx.Identifier{"clients_pgx_copy"}, []string{"id", "name", "at", "doc"}, pgx.CopyFromRows(rows))
		if err != nil || copied != n {
			t.Fatalf("CopyFrom: %d rows, %v", copied, err)
		}
		want := fmt.Sprintf("%d %d %d", n, n*(n+1)/2, n*(n-1)/2)
		got := superuserValue(t, pg, "SELECT count(*) || ' ' || sum(id) || ' ' || sum((doc->>'i')::int8) FROM clients_pgx_copy "+
			"WHERE name = 'name ' || id AND at = '2025-01-01 00:00:00+00'::timestamptz + (id - 1) * interval '1 second'")
		if got != want {
			t.Errorf("after CopyFrom: %s, want %s", got, want)
		}
	})
}
