// Package stmt is the statement seam: the record a per-statement policy sees
// (Statement), the answer it gives (Decision), the chain that asks every
// policy in order (Chain), the hook through which a policy sees a
// statement's results (ResultHook) and the record a finished statement
// leaves (Record).
//
// The session builds a Statement for every simple Query, extended-protocol
// Parse and Bind it relays, whatever the authentication mode, asks the Chain
// and acts on the Outcome. Policies know nothing of the wire; the session
// knows no policy by name.
package stmt

import (
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// Protocol says which client message a Statement stands for.
type Protocol uint8

const (
	// Simple is a Query message: one or more statements, run at once.
	Simple Protocol = iota + 1
	// Parse prepares a statement (named, or the unnamed one) for later Binds.
	Parse
	// Bind creates a portal from a prepared statement; its Execute follows.
	Bind
	// FunctionCall calls a function by OID (the fast-path interface, used
	// by large-object clients): there is no SQL text, only Function.
	FunctionCall
)

// String returns the protocol's name as used in logs and records.
func (p Protocol) String() string {
	switch p {
	case Simple:
		return "simple"
	case Parse:
		return "parse"
	case Bind:
		return "bind"
	case FunctionCall:
		return "function-call"
	}
	return "unknown"
}

// Facts are what the session knows about itself when a statement arrives.
type Facts struct {
	// ConnID is the session's connection id (as on its log lines).
	ConnID uint64
	// Identity is the token identity of a token-authenticated session; empty
	// in passthrough authentication.
	Identity string
	// Roles are the token's roles and groups (token sessions only).
	Roles []string
	// User is the database user the backend session runs as (the service
	// account in token sessions).
	User string
	// Database is the backend database.
	Database string
	// Backend is the address (host:port) of the session's database server.
	Backend string
	// Locked are run-time settings the session must keep at these values
	// (application_name=jwt:<identity> in token sessions).
	Locked map[string]string
	// TxStatus is the transaction status of the last ReadyForQuery: 'I'
	// idle, 'T' in a transaction block, 'E' in a failed one. In a pipeline
	// it is the status before the pipeline.
	TxStatus byte
}

// Statement is one statement as a policy sees it. The session reuses one
// Statement per connection: a policy must not keep it (or Facts) after
// Decide returns; copy what outlives the call.
type Statement struct {
	Protocol Protocol
	// Name is the prepared statement (Parse, Bind; "" is the unnamed one).
	Name string
	// Portal is the portal a Bind creates ("" is the unnamed one).
	Portal string
	// SQL is the statement text: the Query's or the Parse's, and for a Bind
	// the text of the prepared statement it binds ("" when the proxy never
	// saw it prepared, e.g. prepared before a restart of the tracking).
	SQL string
	// ClientSQL is the text as the client sent it (for a Bind, the text of
	// its Parse), which a rewrite does not change: records and logs keep it,
	// never a rewrite (a masking rewrite can carry key material).
	ClientSQL string
	// ParamOIDs are the parameter types a Parse declares (0: unspecified).
	ParamOIDs []uint32
	// Function is the OID of the function a FunctionCall calls.
	Function uint32
	// Facts describe the session.
	Facts *Facts

	parser *sqlparse.Parser
	parsed *sqlparse.Parsed
}

// Reset prepares s for the next statement; parser parses its text on demand
// (shared by every policy, cached by text).
func (s *Statement) Reset(proto Protocol, name, portal, sql string, paramOIDs []uint32, facts *Facts, parser *sqlparse.Parser) {
	*s = Statement{Protocol: proto, Name: name, Portal: portal, SQL: sql, ClientSQL: sql, ParamOIDs: paramOIDs, Facts: facts, parser: parser}
}

// UseParsed gives the statement the parse of its text, when the caller has
// it already (ignored for another text).
func (s *Statement) UseParsed(p *sqlparse.Parsed) {
	if p != nil && p.SQL() == s.SQL {
		s.parsed = p
	}
}

// SetSQL replaces the text (after a policy rewrote it); the next Parsed call
// parses the new text.
func (s *Statement) SetSQL(sql string) {
	if sql != s.SQL {
		s.SQL, s.parsed = sql, nil
	}
}

// Parsed returns the parse tree of SQL, parsed once for all policies and
// cached by text across sessions. Treat it as read-only.
func (s *Statement) Parsed() *sqlparse.Parsed {
	if s.parsed == nil {
		if s.parser == nil {
			s.parser = sqlparse.NewParser(0)
		}
		s.parsed = s.parser.Parse(s.SQL)
	}
	return s.parsed
}

// Fingerprint returns the fingerprint of SQL (the same for statements that
// differ only in constants); "" when the text does not parse.
func (s *Statement) Fingerprint() string { return s.Parsed().Fingerprint() }
