package metadata

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// redshiftTableQuery reads one table from svv_table_info (Redshift's view
// of every user table it can see, with real row counts): in the named
// schema, or for an unqualified name, public's first. size is in 1 MB
// blocks.
const redshiftTableQuery = `SELECT table_id::bigint, "schema"::text, "table"::text, coalesce(tbl_rows, 0)::float8,
	coalesce(size, 0)::bigint, coalesce(diststyle, '')::text, coalesce(sortkey1, '')::text,
	coalesce(skew_rows, 0)::float8, coalesce(unsorted, 0)::float8
FROM svv_table_info
WHERE "table" = $2 AND ($1 = '' OR "schema" = $1)
ORDER BY ("schema" = 'public') DESC, "schema"
LIMIT 1`

// readRedshiftTable is readTable on Redshift.
func readRedshiftTable(ctx context.Context, pool *pgxpool.Pool, schema, name string) (*Table, error) {
	if pool == nil {
		return nil, errNoPool
	}
	var (
		t      Table
		oid    int64
		sizeMB int64
		rs     RedshiftFacts
	)
	err := pool.QueryRow(ctx, redshiftTableQuery, pgx.QueryExecModeSimpleProtocol, schema, name).Scan(
		&oid, &t.Schema, &t.Name, &t.Rows, &sizeMB, &rs.DistStyle, &rs.SortKey1, &rs.SkewRows, &rs.Unsorted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &NotFoundError{Schema: schema, Name: name}
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: read %s from svv_table_info: %w", displayName(schema, name), err)
	}
	t.OID, t.Kind, t.Bytes, t.Pages = uint32(oid), 'r', sizeMB<<20, sizeMB<<20/8192
	t.Redshift = &rs
	return &t, nil
}
