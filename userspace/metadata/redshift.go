package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

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

// Alert is one kind of alert Redshift logged (stl_alert_event_log) for
// the queries that scanned a table: the event, the solution Redshift
// suggests, how many times it was logged and when last (UTC).
type Alert struct {
	Event, Solution string
	Count           int64
	Last            time.Time
}

// AlertWindow is how far back RedshiftAlerts looks; MaxAlerts bounds the
// kinds of alert it returns and MaxAlertText each event and solution (in
// characters).
const (
	AlertWindow  = 7 * 24 * time.Hour
	MaxAlerts    = 5
	MaxAlertText = 300
)

// redshiftAlertsQuery reads the alerts of the queries that scanned the
// table of id $1 since $2 (UTC). stl_alert_event_log names no table: its
// rows are joined with stl_scan's on the step they were logged for. The
// cut-off is a parameter (Redshift's getdate() is not PostgreSQL's); the
// texts are cut to MaxAlertText characters, the rows to MaxAlerts.
const redshiftAlertsQuery = `SELECT left(trim(a.event), 300), left(trim(a.solution), 300), count(*)::bigint, max(a.event_time)
FROM stl_alert_event_log a
JOIN stl_scan s ON s.query = a.query AND s.slice = a.slice AND s.segment = a.segment AND s.step = a.step
WHERE s.tbl = $1 AND a.event_time >= $2::timestamp
GROUP BY trim(a.event), trim(a.solution)
ORDER BY count(*) DESC, max(a.event_time) DESC
LIMIT 5`

// RedshiftAlerts returns the alerts Redshift logged in the last
// AlertWindow for the queries that scanned the table of id tableID
// (Table.OID: svv_table_info.table_id, stl_scan.tbl), most frequent first,
// at most MaxAlerts. It reads the system tables on each call (nothing is
// cached), within QueryTimeout. Only on Redshift (Options.Redshift).
func (c *Cache) RedshiftAlerts(ctx context.Context, tableID uint32) ([]Alert, error) {
	if !c.opts.Redshift {
		return nil, errors.New("metadata: stl_alert_event_log is Redshift's")
	}
	if c.pool == nil {
		return nil, errNoPool
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.QueryTimeout)
	defer cancel()
	since := c.opts.Now().UTC().Add(-AlertWindow).Format("2006-01-02 15:04:05")
	rows, err := c.pool.Query(ctx, redshiftAlertsQuery, pgx.QueryExecModeSimpleProtocol, int64(tableID), since)
	if err != nil {
		return nil, fmt.Errorf("metadata: read stl_alert_event_log: %w", err)
	}
	defer rows.Close()
	var alerts []Alert
	for rows.Next() {
		var a Alert
		if err := rows.Scan(&a.Event, &a.Solution, &a.Count, &a.Last); err != nil {
			return nil, fmt.Errorf("metadata: read stl_alert_event_log: %w", err)
		}
		a.Event, a.Solution = clip(a.Event, MaxAlertText), clip(a.Solution, MaxAlertText)
		alerts = append(alerts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metadata: read stl_alert_event_log: %w", err)
	}
	return alerts, nil
}

// clip cuts s to n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
