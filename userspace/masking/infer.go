package masking

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Inferrer finds the masks of the tables a masking file does not name, for
// unknown_table_behavior: llm_inference. It is asked each time a
// database's catalog is read; it should remember what it found for a table
// whose columns did not change.
type Inferrer interface {
	Infer(ctx context.Context, q Querier, backend, database string, cfg *Config) (*Inferred, error)
}

// Inferred is what an Inferrer found in one database.
type Inferred struct {
	// Tables are the tables it found sensitive columns in, with their
	// masks (Line 0: not from the file).
	Tables []Table
	// Undecided are the tables it could not judge (their sample failed,
	// the model gave no answer in time), by schema and name, with why:
	// reading or writing them is refused until a later catalog read judges
	// them.
	Undecided map[[2]string]string
	// Judged is how many tables were looked at.
	Judged int
}

// with returns a copy of c that also names the inferred tables.
func (c *Config) with(inf *Inferred) *Config {
	if inf == nil || len(inf.Tables) == 0 {
		return c
	}
	cp := *c
	cp.Tables = append(slices.Clip(c.Tables), inf.Tables...)
	return &cp
}

// unseenReloadGap is the least time between two catalog reads that
// references to unseen relations cause in one database; a reference to
// another unseen relation within it is refused (try again).
const unseenReloadGap = time.Second

// maxChecked bounds the unseen names a catalog remembers having looked
// for (beyond it, they are looked for again).
const maxChecked = 4096

// undecidedRetryGap is the least time between two catalog reads that
// statements refused for an undecided table cause in one database.
const undecidedRetryGap = 5 * time.Second

// seenQuery lists every relation a statement can name (tables, views,
// materialized views, foreign tables, in any schema but the temporary and
// TOAST ones), so that a reference to one created after the catalog was
// read is noticed.
const seenQuery = `
SELECT n.nspname::text, c.relname::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
	AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast%'`

// loadSeen reads the names of every relation (llm_inference only).
func (c *Catalog) loadSeen(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, seenQuery)
	if err != nil {
		return err
	}
	defer rows.Close()
	c.seen, c.seenName = map[[2]string]bool{}, map[string]bool{}
	for rows.Next() {
		var schema, name string
		if err := rows.Scan(&schema, &name); err != nil {
			return err
		}
		c.seen[[2]string{schema, name}] = true
		c.seenName[name] = true
	}
	return rows.Err()
}

// unseen reports whether a reference names a relation the catalog did
// not see when it was read and has not looked for since: under
// llm_inference, a table created after the read, whose masks are not
// known yet. A temporary table (pg_temp) is the session's own.
func (c *Catalog) unseen(schema, name string) bool {
	if c.seen == nil || strings.HasPrefix(schema, "pg_temp") {
		return false
	}
	key := [2]string{schema, name}
	if c.checked[key] {
		return false
	}
	if schema != "" {
		return !c.seen[key]
	}
	return !c.seenName[name]
}

// refuseUndecided refuses reading and writing the tables an Inferrer could
// not judge.
func (c *Catalog) refuseUndecided(inf *Inferred) {
	if inf == nil {
		return
	}
	for key, why := range inf.Undecided {
		reason := fmt.Sprintf("the masking file does not name it and its masks could not be inferred yet (%s); try again shortly, or name it in the file", why)
		c.refuseRel(key[0], key[1], reason, anyWrite, reason)
		c.refused[key].undecided = true
	}
}

// undecided reports whether a reference names a table refused because the
// Inferrer could not judge it (the catalog is worth reading again soon).
func (c *Catalog) undecided(schema, name string) bool {
	r := c.refusal(schema, name)
	return r != nil && r.undecided
}

// Add notes a judged table: masked when cols is not empty.
func (inf *Inferred) Add(schema, name string, cols []Column) {
	if len(cols) > 0 {
		inf.Tables = append(inf.Tables, Table{Schema: schema, Name: name, Columns: cols})
	}
}
