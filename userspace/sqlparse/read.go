package sqlparse

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// ReadKind classifies a statement for the read-statement analysis.
type ReadKind uint8

const (
	// NotRead is every statement that is not a SELECT-shaped one: INSERT,
	// UPDATE, DELETE, MERGE, DDL, utility statements, EXPLAIN, DECLARE
	// CURSOR, CREATE TABLE AS, COPY.
	NotRead ReadKind = iota
	// PlainRead is SELECT, WITH ... SELECT, TABLE and VALUES, and set
	// operations (UNION, INTERSECT, EXCEPT) of them, that only read.
	PlainRead
	// LockingRead is a SELECT with FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE
	// or FOR KEY SHARE anywhere in it (a subquery's counts): it takes row
	// locks, which writes the rows' headers, and needs the primary.
	LockingRead
	// SelectInto is SELECT ... INTO new_table: it creates a table.
	SelectInto
	// ModifyingWith is a SELECT whose WITH has an INSERT, UPDATE, DELETE or
	// MERGE (WITH gone AS (DELETE ... RETURNING *) SELECT ...): it writes.
	ModifyingWith
)

// String returns the kind's name.
func (k ReadKind) String() string {
	switch k {
	case PlainRead:
		return "read"
	case LockingRead:
		return "locking read"
	case SelectInto:
		return "select into"
	case ModifyingWith:
		return "data-modifying with"
	}
	return "not a read"
}

// ClassifyRead tells what kind of statement n (one statement of a parse
// result: RawStmt.Stmt, or Stmt.Node) is. When several apply, SelectInto
// wins over ModifyingWith, which wins over LockingRead.
//
// The classification is syntactic: a PlainRead may still call a function
// that writes or has effects (nextval, set_config, pg_advisory_lock, any
// user function), which only the server knows.
func ClassifyRead(n *pg_query.Node) ReadKind {
	sel := n.GetSelectStmt()
	if sel == nil {
		return NotRead
	}
	var into, modifying, locking bool
	// INTO is accepted only at the top, on the leftmost arm of a set
	// operation (anywhere else the server refuses the statement).
	for s := sel; s != nil; s = s.Larg {
		into = into || s.IntoClause != nil
	}
	InspectNode(n, func(x *pg_query.Node) bool {
		switch x.Node.(type) {
		case *pg_query.Node_LockingClause:
			locking = true
		case *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt:
			modifying = true
			return false
		}
		return true
	})
	switch {
	case into:
		return SelectInto
	case modifying:
		return ModifyingWith
	case locking:
		return LockingRead
	}
	return PlainRead
}

// IsRead reports whether n is a plain read statement (ClassifyRead returns
// PlainRead): the statements the analysis judges.
func IsRead(n *pg_query.Node) bool { return ClassifyRead(n) == PlainRead }
