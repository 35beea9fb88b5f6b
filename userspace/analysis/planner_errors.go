package analysis

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Kinds of planner failure. Every error Planner.Judge returns matches
// exactly one of them with errors.Is; the caller chooses the configured
// fail-open or fail-closed answer from the kind, the planner never does.
var (
	// ErrNotRead: the text is not exactly one SELECT, VALUES or TABLE
	// statement (or it writes: SELECT INTO, a data-modifying WITH). It was
	// not sent to the server.
	ErrNotRead = errors.New("not a single read statement")
	// ErrSyntax: the text does not parse (pg_query, or the server: SQLSTATE
	// class 42601 syntax_error).
	ErrSyntax = errors.New("syntax error")
	// ErrTimeout: planning did not finish in time: statement_timeout
	// (57014), lock_timeout (55P03, a lock held by another session), or the
	// caller's context deadline.
	ErrTimeout = errors.New("planning timed out")
	// ErrRelationMissing: a relation or schema the statement names does not
	// exist for the proxy's account (42P01, 3F000), typically a client's
	// temporary table or a search_path the proxy does not share.
	ErrRelationMissing = errors.New("relation does not exist")
	// ErrPermissionDenied: the proxy's account may not read something the
	// statement reads (42501).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrExplain is every other failure: another server error (undefined
	// column or function, parameter type not inferable, a planning-time
	// function that tried to write, ...), a lost connection, a canceled
	// context.
	ErrExplain = errors.New("explain failed")
)

// PlanError is the error Planner.Judge returns. It matches its Kind (one of
// the Err* variables) and the underlying error with errors.Is and errors.As
// (a *pgconn.PgError for server errors).
type PlanError struct {
	// Kind is ErrNotRead, ErrSyntax, ErrTimeout, ErrRelationMissing,
	// ErrPermissionDenied or ErrExplain.
	Kind error
	// SQLState is the server's SQLSTATE, "" when the error did not come
	// from the server.
	SQLState string
	// Err is the underlying error.
	Err error
}

// Error returns "planner: <kind>: <underlying error>".
func (e *PlanError) Error() string {
	if e.Err == nil {
		return "planner: " + e.Kind.Error()
	}
	return fmt.Sprintf("planner: %v: %v", e.Kind, e.Err)
}

// Unwrap returns the kind and the underlying error.
func (e *PlanError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// planError classifies err (from the server, the connection or the
// context) into a *PlanError.
func planError(err error) error {
	if err == nil {
		return nil
	}
	var pe *PlanError
	if errors.As(err, &pe) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &PlanError{Kind: kindOfSQLState(pgErr.Code), SQLState: pgErr.Code, Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return &PlanError{Kind: ErrTimeout, Err: err}
	}
	return &PlanError{Kind: ErrExplain, Err: err}
}

// kindOfSQLState maps a SQLSTATE to the kind of planner failure.
func kindOfSQLState(code string) error {
	switch code {
	case "57014", "55P03": // query_canceled (statement_timeout), lock_not_available
		return ErrTimeout
	case "42P01", "3F000": // undefined_table, invalid_schema_name
		return ErrRelationMissing
	case "42501": // insufficient_privilege
		return ErrPermissionDenied
	case "42601": // syntax_error
		return ErrSyntax
	}
	return ErrExplain
}
