// Package generate writes a first masking file for a database: it scans
// the ordinary and partitioned tables of some schemas, samples their rows,
// judges every column from its name and its values (detectors with
// validators: Luhn, IBAN mod-97, South African ID and US SSN rules,
// entropy), and writes the masking package's YAML with one comment per
// column giving the confidence and the evidence. No sampled value is ever
// written, logged or returned outside the package's results.
package generate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/userspace/masking"
)

// DefaultSampleRows is how many rows are sampled per table by default.
const DefaultSampleRows = 1000

// maxValueLen is how much of each value is read (enough for a JWT or the
// head of a PEM key).
const maxValueLen = 2048

// bigFactor: a table estimated at more than bigFactor times the sample
// size is sampled with TABLESAMPLE SYSTEM; smaller ones with LIMIT.
const bigFactor = 5

// Options configure Scan.
type Options struct {
	// Schemas to scan (used unless AllSchemas); empty means public.
	Schemas []string
	// AllSchemas scans every schema but pg_catalog, information_schema,
	// pg_toast and temporary ones.
	AllSchemas bool
	// SampleRows is the most rows read per table (DefaultSampleRows when
	// 0; at least 2).
	SampleRows int
	// HMAC says a keyed-hash key is configured: identifiers get hmac masks.
	HMAC bool
	// Progress is told of every table (nil: nothing).
	Progress Progress
	// Model, when set, is asked about the columns the detectors could not
	// decide (low confidence): with the shapes of their values only,
	// unless Model.Samples.
	Model *Model
}

// Table is one scanned table.
type Table struct {
	Schema, Name string
	// Partitioned is a partitioned table (its partitions are covered by
	// its entry).
	Partitioned bool
	// Estimate is the planner's row estimate (the partitions' sum for a
	// partitioned table; -1 when never analysed).
	Estimate float64
	// Sampled is the number of rows read, Method how.
	Sampled int
	Method  string
	// Findings are every column's verdict, in attribute order.
	Findings []Finding
	// Skipped says why the table was not scanned ("" when it was).
	Skipped string
}

// Masked returns the findings that get a mask.
func (t *Table) Masked() []Finding {
	var out []Finding
	for _, f := range t.Findings {
		if f.Masked() {
			out = append(out, f)
		}
	}
	return out
}

// Result is a whole scan.
type Result struct {
	Database string
	Schemas  []string
	// AllSchemas: Schemas are every non-system schema.
	AllSchemas bool
	SampleRows int
	HMAC       bool
	Tables     []Table
}

// SchemaError is a schema that does not exist.
type SchemaError struct {
	Missing, Available []string
}

func (e *SchemaError) Error() string {
	s := "s"
	if len(e.Missing) == 1 {
		s = ""
	}
	avail := "none but the system ones"
	if len(e.Available) > 0 {
		avail = strings.Join(e.Available, ", ")
	}
	return fmt.Sprintf("schema%s %s not found in the database (its schemas: %s); set CONFIG_GENERATOR_SCHEMAS to a comma list of existing schemas, or all",
		s, quoteList(e.Missing), avail)
}

// ErrNoTables is returned when the schemas hold no table to scan.
var ErrNoTables = errors.New("no ordinary or partitioned table to scan")

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

const systemSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
	AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'`

const schemasQuery = `SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE ` + systemSchemas

// tablesQuery lists the ordinary and partitioned tables of the schemas $1,
// leaving out partitions and inheritance children of a table that is
// listed (the masking file's entry for the parent covers them), with the
// row estimate and whether the account may read them.
const tablesQuery = `
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
	CASE WHEN c.relkind = 'p' THEN coalesce((SELECT sum(GREATEST(l.reltuples, 0))
		FROM pg_catalog.pg_partition_tree(c.oid) pt JOIN pg_catalog.pg_class l ON l.oid = pt.relid
		WHERE pt.isleaf), 0) ELSE c.reltuples END::float8,
	pg_catalog.has_schema_privilege(n.oid, 'USAGE')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
	AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
		JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
		JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE i.inhrelid = c.oid AND pn.nspname = ANY($1::text[]))`

// columnsQuery lists the live columns of the tables $1 in attribute order,
// with the type's category and base name and whether the account may read
// the column.
const columnsQuery = `
SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory::text,
	coalesce(bt.typname, t.typname)::text, pg_catalog.has_column_privilege(a.attrelid, a.attnum, 'SELECT')
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum`

type tableRow struct {
	oid      uint32
	t        Table
	usage    bool
	columns  []Column
	readable []bool
}

// Scan reads the catalog and samples every table of the schemas. A table
// the account may not read is skipped (Table.Skipped says why) and the
// scan goes on; an unknown schema is a *SchemaError, no table at all
// ErrNoTables.
func Scan(ctx context.Context, q Querier, opts Options) (*Result, error) {
	if opts.SampleRows == 0 {
		opts.SampleRows = DefaultSampleRows
	}
	opts.SampleRows = max(opts.SampleRows, 2)
	res := &Result{AllSchemas: opts.AllSchemas, SampleRows: opts.SampleRows, HMAC: opts.HMAC}
	if err := q.QueryRow(ctx, "SELECT pg_catalog.current_database()::text").Scan(&res.Database); err != nil {
		return nil, fmt.Errorf("reading the database name: %w", err)
	}
	existing, err := queryStrings(ctx, q, schemasQuery)
	if err != nil {
		return nil, fmt.Errorf("reading the schemas: %w", err)
	}
	sort.Strings(existing)
	if opts.AllSchemas {
		res.Schemas = existing
	} else {
		res.Schemas = opts.Schemas
		if len(res.Schemas) == 0 {
			res.Schemas = []string{"public"}
		}
		var missing []string
		for _, s := range res.Schemas {
			if !contains(existing, s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return nil, &SchemaError{Missing: missing, Available: existing}
		}
	}
	tables, err := listTables(ctx, q, res.Schemas)
	if err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return nil, fmt.Errorf("%w in schema %s of database %s (CONFIG_GENERATOR_SCHEMAS=all scans every schema)",
			ErrNoTables, strings.Join(res.Schemas, ", "), res.Database)
	}
	p := opts.Progress
	if p == nil {
		p = nopProgress{}
	}
	p.Start(len(tables))
	for i := range tables {
		tr := &tables[i]
		p.Begin(tr.t.Schema, tr.t.Name)
		if err := sampleTable(ctx, q, tr, opts); err != nil {
			p.Finish()
			return nil, err
		}
		res.Tables = append(res.Tables, tr.t)
		p.Table(i+1, len(tables), &res.Tables[len(res.Tables)-1])
	}
	p.Finish()
	return res, nil
}

// Querier runs the scan's statements (a *pgx.Conn or a pool), logged in
// as PG_BACKEND_URL's account.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func queryStrings(ctx context.Context, q masking.Querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func listTables(ctx context.Context, q masking.Querier, schemas []string) ([]tableRow, error) {
	rows, err := q.Query(ctx, tablesQuery, schemas)
	if err != nil {
		return nil, fmt.Errorf("listing the tables: %w", err)
	}
	var out []tableRow
	for rows.Next() {
		var tr tableRow
		var kind string
		if err := rows.Scan(&tr.oid, &tr.t.Schema, &tr.t.Name, &kind, &tr.t.Estimate, &tr.usage); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing the tables: %w", err)
		}
		tr.t.Partitioned = kind == "p"
		out = append(out, tr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing the tables: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].t.Schema != out[j].t.Schema {
			return out[i].t.Schema < out[j].t.Schema
		}
		return out[i].t.Name < out[j].t.Name
	})
	if len(out) == 0 {
		return nil, nil
	}
	byOID := map[uint32]*tableRow{}
	oids := make([]uint32, len(out))
	for i := range out {
		byOID[out[i].oid] = &out[i]
		oids[i] = out[i].oid
	}
	crows, err := q.Query(ctx, columnsQuery, oids)
	if err != nil {
		return nil, fmt.Errorf("listing the columns: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		var oid uint32
		var c Column
		var readable bool
		if err := crows.Scan(&oid, &c.Name, &c.Type, &c.Category, &c.BaseType, &readable); err != nil {
			return nil, fmt.Errorf("listing the columns: %w", err)
		}
		if tr := byOID[oid]; tr != nil {
			tr.columns = append(tr.columns, c)
			tr.readable = append(tr.readable, readable)
		}
	}
	if err := crows.Err(); err != nil {
		return nil, fmt.Errorf("listing the columns: %w", err)
	}
	return out, nil
}

// SampleSQL is the statement that samples cols of a table: a plain LIMIT
// for a table estimated at up to bigFactor times the sample (or never
// analysed), else TABLESAMPLE SYSTEM at about twice the share needed,
// REPEATABLE so that a second run reads the same pages. Each value is read
// as text, cut at maxValueLen characters.
func SampleSQL(schema, table string, cols []string, estimate float64, n int, tablesample bool) (sql, method string) {
	list := make([]string, len(cols))
	for i, c := range cols {
		list[i] = fmt.Sprintf("pg_catalog.left(CAST(%s AS pg_catalog.text), %d)", pgx.Identifier{c}.Sanitize(), maxValueLen)
	}
	from := pgx.Identifier{schema, table}.Sanitize()
	if tablesample {
		pct := min(100, 100*2*float64(n)/estimate)
		return fmt.Sprintf("SELECT %s FROM %s TABLESAMPLE SYSTEM (%.4f) REPEATABLE (0) LIMIT %d", strings.Join(list, ", "), from, pct, n),
			fmt.Sprintf("TABLESAMPLE SYSTEM %.2g%% of ~%.0f rows", pct, estimate)
	}
	return fmt.Sprintf("SELECT %s FROM %s LIMIT %d", strings.Join(list, ", "), from, n), "LIMIT"
}

// useTablesample reports whether a table is big enough for TABLESAMPLE.
func useTablesample(estimate float64, n int) bool {
	return estimate > float64(bigFactor*n)
}

func sampleTable(ctx context.Context, q masking.Querier, tr *tableRow, opts Options) error {
	t := &tr.t
	var cols []string
	var idx []int
	anyReadable := false
	for i, c := range tr.columns {
		anyReadable = anyReadable || tr.readable[i]
		if tr.readable[i] && c.sampled() {
			cols = append(cols, c.Name)
			idx = append(idx, i)
		}
	}
	if !tr.usage || !anyReadable {
		t.Skipped = "permission denied: the account may not read it (GRANT USAGE ON SCHEMA and SELECT ON TABLE to scan it)"
		return nil
	}
	values := make([][]string, len(tr.columns))
	if len(cols) > 0 {
		n := opts.SampleRows
		big := useTablesample(t.Estimate, n)
		sql, method := SampleSQL(t.Schema, t.Name, cols, t.Estimate, n, big)
		rows, err := readSample(ctx, q, sql, len(cols))
		if err == nil && big && len(rows) < n/2 {
			// Statistics out of date, or too few pages: read the head.
			sql, method = SampleSQL(t.Schema, t.Name, cols, t.Estimate, n, false)
			rows, err = readSample(ctx, q, sql, len(cols))
		}
		if err != nil {
			if reason, ok := tableError(err); ok {
				t.Skipped = reason
				return nil
			}
			return fmt.Errorf("sampling %s.%s: %w", t.Schema, t.Name, err)
		}
		t.Sampled, t.Method = len(rows), method
		for _, row := range rows {
			for j, v := range row {
				if v != nil {
					values[idx[j]] = append(values[idx[j]], *v)
				}
			}
		}
	}
	names := make([]string, len(tr.columns))
	for i, c := range tr.columns {
		names[i] = c.Name
	}
	for i, c := range tr.columns {
		f := Classify(c, values[i], opts.HMAC)
		if !tr.readable[i] && f.Why == "" {
			f.Why = "the account may not read this column"
		}
		if tr.readable[i] {
			f = opts.Model.consider(ctx, t, names, f, values[i], opts.HMAC)
		}
		t.Findings = append(t.Findings, f)
	}
	return nil
}

// tableError turns an error of one table's sample into the reason it is
// skipped; ok false for errors that end the scan (the connection is lost).
func tableError(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	switch pe.Code {
	case "42501":
		return "permission denied: " + pe.Message + " (GRANT SELECT on it to scan it)", true
	case "57014":
		return "the sample took longer than statement_timeout", true
	case "55P03":
		return "locked by another session (lock_timeout)", true
	}
	return fmt.Sprintf("the sample failed: SQLSTATE %s: %s", pe.Code, pe.Message), true
}

func readSample(ctx context.Context, q masking.Querier, sql string, ncols int) ([][]*string, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]*string
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != ncols {
			return nil, fmt.Errorf("%d columns in the sample, %d expected", len(raw), ncols)
		}
		row := make([]*string, ncols)
		for i, b := range raw {
			if b != nil {
				s := string(b)
				row[i] = &s
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
