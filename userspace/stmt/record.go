package stmt

import "time"

// Record is what one finished statement leaves: a simple Query (all its
// statements), an Execute of a portal, or a statement refused before it ran.
// The session hands each Record to its record sink once the statement is
// answered; from then on the sink owns it.
type Record struct {
	// ConnID is the session's connection id.
	ConnID uint64
	// Identity is the token identity, or "" in passthrough.
	Identity string
	// User and Database are the backend session's.
	User, Database string
	// Protocol is Simple for a Query, Bind for an Execute (or a refused
	// Bind), Parse for a refused Parse.
	Protocol Protocol
	// Name and Portal are the prepared statement and portal (extended protocol).
	Name, Portal string
	// SQL is the text that ran (after any rewrite); Fingerprint is that of
	// the client's text ("" when it did not parse).
	SQL, Fingerprint string
	// Action, Source and Verdict are the chain's decision (for an Execute:
	// its Bind's, or its Parse's when that was stronger).
	Action          Action
	Source, Verdict string
	// Leg is the backend that ran it.
	Leg string
	// SQLState is the error the client saw for it ("" on success).
	SQLState string
	// Start is when the client's message arrived.
	Start time.Time
	// Decide is the time the policies took; Backend the time from sending
	// the statement to its last answer; Total from arrival to last answer.
	Decide, Backend, Total time.Duration
	// LLM is the part of Decide spent waiting for a language model (0: none
	// was asked, as on every cache hit).
	LLM time.Duration
	// Rows is the row count from the command tags (SELECT n, INSERT 0 n, ...).
	Rows int64
}
