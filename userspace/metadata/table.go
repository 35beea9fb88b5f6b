// Package metadata caches what the analysis needs to know about tables:
// row estimates, sizes, indexes and their columns, read from the catalogs
// on a connection of the proxy's own and refreshed after METADATA_CACHE_TTL.
package metadata

// Table is what the catalogs say about one table (or materialized view,
// or partitioned table: then the figures are the sum of its partitions).
type Table struct {
	OID    uint32
	Schema string
	Name   string
	// Kind is pg_class.relkind: 'r' table, 'p' partitioned, 'm'
	// materialized view, 'v' view, 'f' foreign table.
	Kind byte
	// Rows is the planner's row estimate (reltuples; for a partitioned
	// table the sum over its partitions); -1 when never analyzed.
	Rows float64
	// Pages and Bytes are the size on disk (relpages, pg_total_relation_size).
	Pages int64
	Bytes int64
	// Indexes are the table's valid indexes.
	Indexes []Index
	// Columns are the table's columns in attribute order (dropped columns
	// left out). The analysis uses them to tell which table an unqualified
	// column of a join belongs to; nil when not known.
	Columns []Column
	// Redshift holds what svv_table_info adds on Redshift (nil elsewhere).
	Redshift *RedshiftFacts
}

// RedshiftFacts are a Redshift table's distribution and sort facts.
type RedshiftFacts struct {
	// DistStyle is svv_table_info.diststyle (EVEN, ALL, KEY(col), AUTO(…)).
	DistStyle string
	// SortKey1 is the first sort key column ("" for none).
	SortKey1 string
	// SkewRows is rows on the fullest slice over rows on the emptiest (0
	// when unknown); Unsorted the percentage of unsorted rows.
	SkewRows, Unsorted float64
}

// Column is one column of a table.
type Column struct {
	Name string
	// Type is pg_type.typname of the column's type, of the base type for a
	// domain: "int4", "text", "varchar", "timestamptz", "_int4" for int4[].
	Type string
}

// Index is one index of a table.
type Index struct {
	Name string
	// Columns are the key columns in order; an expression key is "".
	Columns []string
	// Method is the access method (btree, hash, gin, gist, brin, ...).
	Method  string
	Unique  bool
	Primary bool
	// Partial is set for an index with a WHERE predicate.
	Partial bool
}

// QualifiedName returns schema.name.
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// Big reports whether the table has at least rows rows (by estimate).
func (t *Table) Big(rows float64) bool { return t != nil && t.Rows >= rows }

// LeadingColumn reports whether some index has column as its first key
// (so an equality or range condition on it can use the index).
func (t *Table) LeadingColumn(column string) bool {
	for _, ix := range t.Indexes {
		if len(ix.Columns) > 0 && ix.Columns[0] == column {
			return true
		}
	}
	return false
}

// Column returns the column named name, if the table's columns are known
// and it has one.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// HasExpressionIndex reports whether some index has an expression key
// (a key column "").
func (t *Table) HasExpressionIndex() bool {
	for _, ix := range t.Indexes {
		for _, c := range ix.Columns {
			if c == "" {
				return true
			}
		}
	}
	return false
}

// Indexed reports whether column is a key column of some index.
func (t *Table) Indexed(column string) bool {
	for _, ix := range t.Indexes {
		for _, c := range ix.Columns {
			if c == column {
				return true
			}
		}
	}
	return false
}
