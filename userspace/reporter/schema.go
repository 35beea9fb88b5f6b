package reporter

import (
	"fmt"
	"strings"
)

// Schema is the schema that holds the reporter's tables.
const Schema = "pgproxy"

// column is one column of a reporter table. Every NOT NULL column has a
// default, so that ALTER TABLE ... ADD COLUMN works on a table with rows.
type column struct {
	name, def string
}

// index is one index of a reporter table.
type index struct {
	name, columns string
}

// table describes a reporter table: its columns in COPY order and indexes.
type table struct {
	name    Table
	columns []column
	indexes []index
}

var metricsTable = table{
	name: TableMetrics,
	columns: []column{
		{"recorded_at", "timestamptz NOT NULL DEFAULT now()"},
		{"fingerprint", "text NOT NULL DEFAULT ''"},
		{"query_text", "text"},
		{"identity", "text NOT NULL DEFAULT ''"},
		{"db_user", "text NOT NULL DEFAULT ''"},
		{"database", "text NOT NULL DEFAULT ''"},
		{"mode", "text NOT NULL DEFAULT ''"},
		{"action", "text NOT NULL DEFAULT ''"},
		{"verdict", "text NOT NULL DEFAULT ''"},
		{"decision_source", "text NOT NULL DEFAULT ''"},
		{"analysis_ms", "double precision NOT NULL DEFAULT 0"},
		{"backend_ms", "double precision NOT NULL DEFAULT 0"},
		{"total_ms", "double precision NOT NULL DEFAULT 0"},
		{"rows", "bigint NOT NULL DEFAULT 0"},
		{"sqlstate", "text NOT NULL DEFAULT ''"},
		{"node", "text NOT NULL DEFAULT ''"},
		{"conn_id", "bigint NOT NULL DEFAULT 0"},
		{"proxy_instance", "text NOT NULL DEFAULT ''"},
		{"llm_ms", "double precision"},
	},
	indexes: []index{
		{"query_metrics_recorded_at_idx", "recorded_at"},
		{"query_metrics_fingerprint_idx", "fingerprint, recorded_at"},
	},
}

var issuesTable = table{
	name: TableIssues,
	columns: []column{
		{"detected_at", "timestamptz NOT NULL DEFAULT now()"},
		{"fingerprint", "text NOT NULL DEFAULT ''"},
		{"query_text", "text"},
		{"identity", "text NOT NULL DEFAULT ''"},
		{"db_user", "text NOT NULL DEFAULT ''"},
		{"database", "text NOT NULL DEFAULT ''"},
		{"verdict", "text NOT NULL DEFAULT ''"},
		{"reason", "text NOT NULL DEFAULT ''"},
		{"suggestion", "text NOT NULL DEFAULT ''"},
		{"check_name", "text NOT NULL DEFAULT ''"},
		{"evidence", "text NOT NULL DEFAULT ''"},
		{"source", "text NOT NULL DEFAULT ''"},
		{"origin", "text NOT NULL DEFAULT ''"},
		{"action", "text NOT NULL DEFAULT ''"},
		{"conn_id", "bigint NOT NULL DEFAULT 0"},
		{"proxy_instance", "text NOT NULL DEFAULT ''"},
		{"model", "text NOT NULL DEFAULT ''"},
	},
	indexes: []index{
		{"query_issues_detected_at_idx", "detected_at"},
		{"query_issues_fingerprint_idx", "fingerprint, detected_at"},
	},
}

var tables = []*table{&metricsTable, &issuesTable}

// qualified returns schema.name.
func (t *table) qualified() string { return Schema + "." + string(t.name) }

// columnNames returns the column names in COPY order.
func (t *table) columnNames() []string {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	return names
}

func (t *table) createSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (\n", t.qualified())
	for i, c := range t.columns {
		sep := ","
		if i == len(t.columns)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "    %-16s %s%s\n", c.name, c.def, sep)
	}
	b.WriteString(");")
	return b.String()
}

func (t *table) addColumnSQL(c column) string {
	return fmt.Sprintf("ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s;", t.qualified(), c.name, c.def)
}

func (t *table) indexSQL(ix index) string {
	return fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s);", ix.name, t.qualified(), ix.columns)
}

// SchemaSQL returns the DDL the reporter runs when its schema is missing:
// an operator may run it ahead, for example when the reporter's role may
// not create schemas. Every statement is idempotent.
func SchemaSQL() string {
	parts := []string{"CREATE SCHEMA IF NOT EXISTS " + Schema + ";"}
	for _, t := range tables {
		parts = append(parts, t.createSQL())
		for _, ix := range t.indexes {
			parts = append(parts, t.indexSQL(ix))
		}
	}
	return strings.Join(parts, "\n")
}

// missingDDL returns the statements that create what present lacks.
func missingDDL(present map[string]bool) []string {
	var ddl []string
	if !present[""] {
		ddl = append(ddl, "CREATE SCHEMA IF NOT EXISTS "+Schema+";")
	}
	for _, t := range tables {
		if !present[string(t.name)] {
			ddl = append(ddl, t.createSQL())
		} else {
			for _, c := range t.columns {
				if !present[string(t.name)+"."+c.name] {
					ddl = append(ddl, t.addColumnSQL(c))
				}
			}
		}
		for _, ix := range t.indexes {
			if !present[ix.name] {
				ddl = append(ddl, t.indexSQL(ix))
			}
		}
	}
	return ddl
}
