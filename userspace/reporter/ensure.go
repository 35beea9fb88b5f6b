package reporter

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// schemaLockKey is the pg_advisory_xact_lock key under which every reporter
// checks and creates the schema ("pgproxy" and 1 in ASCII), so replicas
// starting at once do not race on the catalogs.
const schemaLockKey int64 = 0x7067_7072_6f78_7901

// ensureSchema creates what is missing of the schema, its tables, their
// columns and indexes, under an advisory transaction lock, so that reporters
// starting at once wait for each other instead of racing on the catalogs.
// When everything exists no DDL runs, so a role that may only insert into
// tables created by an operator works. A race with a creator that does not
// take the lock (a duplicate-object error) is retried.
func ensureSchema(ctx context.Context, conn *pgx.Conn) error {
	var err error
	for range 3 {
		if err = ensureSchemaOnce(ctx, conn); err == nil || !isDuplicateObject(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("reporter: schema: %w", err)
	}
	return nil
}

func ensureSchemaOnce(ctx context.Context, conn *pgx.Conn) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
			return err
		}
		present, err := existingObjects(ctx, tx)
		if err != nil {
			return err
		}
		for _, stmt := range missingDDL(present) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", firstLine(stmt), err)
			}
		}
		return nil
	})
}

// existingObjects returns what exists in the reporter schema: "" for the
// schema itself, "rel" for each relation (table or index) and "rel.col" for
// each column.
func existingObjects(ctx context.Context, tx pgx.Tx) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `
SELECT c.relname, coalesce(a.attname, '')
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = $1`, Schema)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	var rel, col *string
	_, err = pgx.ForEachRow(rows, []any{&rel, &col}, func() error {
		present[""] = true
		if rel != nil {
			present[*rel] = true
			if col != nil && *col != "" {
				present[*rel+"."+*col] = true
			}
		}
		return nil
	})
	return present, err
}

// isDuplicateObject reports a catalog race lost to a concurrent creator.
func isDuplicateObject(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	switch pg.Code {
	case "23505", // unique_violation on a catalog index
		"42P06", // duplicate_schema
		"42P07", // duplicate_table (also an index)
		"42701", // duplicate_column
		"42710": // duplicate_object
		return true
	}
	return false
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
