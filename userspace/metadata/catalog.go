package metadata

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tableQuery reads the facts of one relation in one round trip. $1 is the
// schema ("" resolves $2 through the connection's search_path, as an
// unqualified name in a statement would), $2 the name, both exactly as the
// parser produced them (unquoted identifiers already folded to lower case).
// Names travel as parameters only: to_regclass gets quote_ident($2), so a
// name with dots, quotes or capitals is looked up as that one identifier.
//
// Rows and sizes are summed over the relation and everything that inherits
// from it (partitions of a partitioned table, at every level, and children
// of an inheritance parent), counting only relations with storage; rows is
// -1 when none of them was ever analyzed (reltuples < 0). Indexes are the
// relation's own valid indexes (for a partitioned table its partitioned
// indexes), key columns only (not INCLUDE), "" for an expression key.
const tableQuery = `
WITH RECURSIVE target AS (
	SELECT c.oid, n.nspname, c.relname, c.relkind::text AS relkind
	FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid = CASE
		WHEN $1::text = '' THEN pg_catalog.to_regclass(pg_catalog.quote_ident($2::text))::oid
		ELSE (SELECT c2.oid FROM pg_catalog.pg_class c2
			JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace
			WHERE n2.nspname = $1::text AND c2.relname = $2::text)
	END
), tree(oid) AS (
	SELECT oid FROM target
	UNION
	SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid
), sizes AS (
	SELECT count(*) FILTER (WHERE c.reltuples >= 0) AS analyzed,
		coalesce(sum(c.reltuples::float8) FILTER (WHERE c.reltuples >= 0), 0) AS rows,
		coalesce(sum(c.relpages), 0)::int8 AS pages,
		coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::int8 AS bytes
	FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.oid
	WHERE c.relkind IN ('r', 'm', 'f')
)
SELECT t.oid, t.nspname, t.relname, t.relkind,
	CASE WHEN s.analyzed = 0 THEN -1 ELSE s.rows END, s.pages, s.bytes,
	(SELECT coalesce(json_agg(json_build_object(
			'name', ic.relname, 'method', am.amname,
			'unique', x.indisunique, 'primary', x.indisprimary,
			'partial', x.indpred IS NOT NULL,
			'columns', (SELECT json_agg(coalesce(a.attname::text, '') ORDER BY k.ord)
				FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
				LEFT JOIN pg_catalog.pg_attribute a
					ON a.attrelid = x.indrelid AND a.attnum = k.attnum AND k.attnum <> 0
				WHERE k.ord <= x.indnkeyatts))
			ORDER BY ic.relname), '[]'::json)
		FROM pg_catalog.pg_index x
		JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
		JOIN pg_catalog.pg_am am ON am.oid = ic.relam
		WHERE x.indrelid = t.oid AND x.indisvalid),
	(SELECT coalesce(json_agg(json_build_object(
			'name', a.attname, 'type', coalesce(bt.typname, ty.typname)) ORDER BY a.attnum), '[]'::json)
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
		LEFT JOIN pg_catalog.pg_type bt ON ty.typtype = 'd' AND bt.oid = ty.typbasetype
		WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped)
FROM target t, sizes s`

// indexRow and columnRow are the JSON shapes of tableQuery's last columns.
type indexRow struct {
	Name    string   `json:"name"`
	Method  string   `json:"method"`
	Unique  bool     `json:"unique"`
	Primary bool     `json:"primary"`
	Partial bool     `json:"partial"`
	Columns []string `json:"columns"`
}

type columnRow struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// errNoPool is returned by a Cache made without a pool.
var errNoPool = errors.New("metadata: no connection pool")

// readTable runs tableQuery on the pool. A name that does not resolve is a
// *NotFoundError; anything else (pool closed, server down, timeout) is
// returned wrapped.
func readTable(ctx context.Context, pool *pgxpool.Pool, schema, name string) (*Table, error) {
	if pool == nil {
		return nil, errNoPool
	}
	var (
		t       Table
		kind    string
		indexes []indexRow
		columns []columnRow
	)
	err := pool.QueryRow(ctx, tableQuery, schema, name).Scan(
		&t.OID, &t.Schema, &t.Name, &kind, &t.Rows, &t.Pages, &t.Bytes, &indexes, &columns)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &NotFoundError{Schema: schema, Name: name}
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: read %s: %w", displayName(schema, name), err)
	}
	if kind != "" {
		t.Kind = kind[0]
	}
	if len(indexes) > 0 {
		t.Indexes = make([]Index, len(indexes))
		for i, ix := range indexes {
			t.Indexes[i] = Index{Name: ix.Name, Columns: ix.Columns, Method: ix.Method,
				Unique: ix.Unique, Primary: ix.Primary, Partial: ix.Partial}
		}
	}
	if len(columns) > 0 {
		t.Columns = make([]Column, len(columns))
		for i, c := range columns {
			t.Columns[i] = Column(c)
		}
	}
	return &t, nil
}

// displayName is schema.name, or name for an unqualified lookup, for errors.
func displayName(schema, name string) string {
	if schema == "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q.%q", schema, name)
}
