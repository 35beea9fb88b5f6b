package stmt

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// Action is what a decision asks the session to do with a statement.
type Action uint8

const (
	// Allow forwards the statement unchanged.
	Allow Action = iota
	// Refuse does not run the statement: the client gets Decision.Err
	// exactly as if PostgreSQL had raised it at that point.
	Refuse
	// Rewrite forwards Decision.SQL in place of the statement's text
	// (Simple and Parse only; a Bind cannot change its statement).
	Rewrite
	// Route runs the statement on the backend Decision.Leg.
	Route
)

// String returns the action's name as used in logs and records.
func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Refuse:
		return "refuse"
	case Rewrite:
		return "rewrite"
	case Route:
		return "route"
	}
	return "unknown"
}

// LegFast is the backend a session opens at login; statements run there
// unless a policy routes them elsewhere.
const LegFast = "fast"

// Decision is one policy's answer for one statement.
type Decision struct {
	Action Action
	// Err is the refusal the client sees (Refuse): SQLSTATE, message,
	// detail, hint. Its severity is ERROR: the session goes on.
	Err *wire.Error
	// SQL replaces the statement's text (Rewrite).
	SQL string
	// Leg names the backend that runs the statement (Route).
	Leg string
	// Results, when set, sees the statement's result columns and rows (with
	// Allow, Rewrite or Route).
	Results ResultHook
	// Source names what decided, for records and metrics ("guard", "rules",
	// "planner", "memory", ...). Bounded: never SQL or a fingerprint.
	Source string
	// Verdict is a short label for records ("ok", "inefficient", ...).
	Verdict string
	// LLM is how long the decision waited for a language model (the
	// analysis's model tier in sync mode); 0 when none was asked.
	LLM time.Duration
}

// Policy decides about statements. Decide runs on the session's goroutine
// for every Simple, Parse and Bind statement, before anything is sent to the
// backend: it must be quick, or bounded by ctx.
type Policy interface {
	Decide(ctx context.Context, st *Statement) Decision
}

// PolicyFunc adapts a function to Policy.
type PolicyFunc func(ctx context.Context, st *Statement) Decision

// Decide calls f.
func (f PolicyFunc) Decide(ctx context.Context, st *Statement) Decision { return f(ctx, st) }

// ResultHook sees a statement's results. Columns is called at the start of
// every result set (for Execute of a portal, with the columns and formats of
// that portal, whether or not the client described it) and returns the
// function that sees each row of the set, or nil to leave the rows untouched.
type ResultHook interface {
	Columns(fields []pgproto3.FieldDescription) RowFunc
}

// ErrorHook may be implemented by a ResultHook: it sees every ErrorResponse
// and NoticeResponse that answers the statement, before the client does,
// and may change its fields in place (masking removes a DETAIL that can
// print a row).
type ErrorHook interface {
	Error(e *pgproto3.ErrorResponse)
}

// RowFunc sees one row: values[i] is column i in the format its field
// announced (text or binary), nil for NULL. It may change values in place or
// return another slice with the same number of columns. The values are
// valid only during the call. An error ends the session (fail closed): the
// row is never forwarded.
type RowFunc func(values [][]byte) ([][]byte, error)

// Chain is the statement policies in the order they are asked (for example:
// guard, masking rewrite, analysis, route).
type Chain []Policy

// Outcome is what the chain decided for one statement.
type Outcome struct {
	// Action is Refuse when a policy refused (the others after it are not
	// asked), else Route when a policy chose a leg, else Rewrite when the
	// text changed, else Allow.
	Action Action
	// Err is the refusal (Refuse).
	Err *wire.Error
	// SQL is the text to forward: the statement's, or the last rewrite.
	SQL string
	// Rewritten is set when SQL is not the client's text.
	Rewritten bool
	// Leg is the chosen backend ("" means LegFast).
	Leg string
	// Hooks are the result hooks the policies asked for, in chain order.
	Hooks []ResultHook
	// Source and Verdict come from the deciding policy: the one that
	// refused, else the last that routed, else the last that rewrote, else
	// the last that gave any.
	Source, Verdict string
	// Elapsed is the time the chain took; LLM the part of it the policies
	// waited for a language model.
	Elapsed, LLM time.Duration
}

// Decide asks every policy in order. A rewrite is visible to the policies
// after it (st.SQL and st.Parsed change); a refusal stops the chain.
func (c Chain) Decide(ctx context.Context, st *Statement) Outcome {
	return c.decide(ctx, st, nil)
}

// decide is Decide; when keep is not nil, each policy's decision is stored
// at its index (keep has one slot per policy).
func (c Chain) decide(ctx context.Context, st *Statement, keep []Decision) Outcome {
	start := time.Now()
	out := Outcome{Action: Allow, SQL: st.SQL}
	rank := 0 // strength of the decision that set Source: 1 any, 2 rewrite, 3 route
	for i, p := range c {
		d := p.Decide(ctx, st)
		if keep != nil {
			keep[i] = d
		}
		if d.Results != nil {
			out.Hooks = append(out.Hooks, d.Results)
		}
		out.LLM += d.LLM
		r := 0
		if d.Source != "" || d.Verdict != "" {
			r = 1
		}
		switch d.Action {
		case Refuse:
			err := d.Err
			if err == nil {
				err = &wire.Error{Severity: "ERROR", Code: wire.CodeInsufficientPrivilege, Message: "statement refused by pgproxy"}
			}
			out = Outcome{Action: Refuse, Err: err, SQL: out.SQL, Rewritten: out.Rewritten, Source: d.Source, Verdict: d.Verdict, LLM: out.LLM}
			out.Elapsed = time.Since(start)
			return out
		case Rewrite:
			if st.Protocol != Bind && d.SQL != "" {
				st.SetSQL(d.SQL)
				out.SQL, out.Rewritten = d.SQL, true
				if out.Action == Allow {
					out.Action = Rewrite
				}
				r = 2
			}
		case Route:
			out.Leg, out.Action = d.Leg, Route
			r = 3
		}
		if r >= rank && r > 0 {
			out.Source, out.Verdict, rank = d.Source, d.Verdict, r
		}
	}
	out.Elapsed = time.Since(start)
	return out
}

// Reuser may be implemented by a Policy whose decisions can be given again
// without asking: to later Binds of the same prepared statement in the same
// session (a prepared statement run again and again, the hot path of every
// pooled application, is decided once a second, not at every execution),
// and to later simple Queries of the session whose texts have the same shape
// (sqlparse.Parsed.Shape: the same statement with other constants). Only
// decisions that let the statement run as it is are reused (Allow, no result
// hook, no route, no rewrite), and only those every policy calls reusable;
// refusals, routes and result hooks are decided every time.
type Reuser interface {
	// Epoch changes whenever the policy's decisions may have changed: a
	// configuration or override reload, a cache entry written or removed, a
	// catalog read again. It must be cheap (an atomic load).
	Epoch() uint64
	// Reusable reports whether d, the policy's decision about st, may be
	// given again: for a Bind, to the next Binds of its statement; for a
	// Query, to texts of the same shape (so d must not depend on the
	// text's constants).
	Reusable(st *Statement, d Decision) bool
	// Reused is called instead of Decide when the session reuses d, the
	// policy's earlier decision; it returns the decision to report (for
	// records) and may count it.
	Reused(st *Statement, d Decision) Decision
}

// MaxReuse bounds how long a decision is reused: after it the policies are
// asked again, so the lifetimes of their own caches, table facts and
// catalogs apply within a second.
const MaxReuse = time.Second

// Memo is a Chain's decision about the Binds of one prepared statement,
// kept for reuse. The zero value holds nothing; a Memo belongs to one
// session (it is not safe for concurrent use).
type Memo struct {
	ok        bool
	epoch     uint64
	at        time.Time
	decisions []Decision
}

// Reusing reports whether the memo holds a decision the policies called
// reusable (it may still be too old or of another epoch).
func (m *Memo) Reusing() bool { return m != nil && m.ok }

// epoch returns the sum of the policies' epochs (each only grows, so the
// sum changes whenever one does), and false when a policy is not a Reuser.
func (c Chain) epoch() (uint64, bool) {
	var sum uint64
	for _, p := range c {
		r, ok := p.(Reuser)
		if !ok {
			return 0, false
		}
		sum += r.Epoch()
	}
	return sum, true
}

// Reuse gives m's decision again when DecideReusing would (every policy a
// Reuser, no epoch changed, less than MaxReuse since m's decision), and
// reports whether it did; it never asks a policy to decide.
func (c Chain) Reuse(st *Statement, m *Memo, now time.Time) (Outcome, bool) {
	if !m.ok {
		return Outcome{}, false
	}
	epoch, reusable := c.epoch()
	if age := now.Sub(m.at); !reusable || m.epoch != epoch || age < 0 || age >= MaxReuse {
		return Outcome{}, false
	}
	out := Outcome{Action: Allow, SQL: st.SQL}
	for i, p := range c {
		// As in decide, the last policy that gave a source or verdict names them.
		if d := p.(Reuser).Reused(st, m.decisions[i]); d.Source != "" || d.Verdict != "" {
			out.Source, out.Verdict = d.Source, d.Verdict
		}
	}
	return out, true
}

// DecideReusing is Decide for a Bind of a prepared statement, or a simple
// Query of a shape, whose last decision m holds, at time now (see Reuser).
// When every policy is a Reuser, no epoch changed and less than MaxReuse
// passed since m's decision, each policy's Reused replaces its Decide and the
// decision is given again (Elapsed 0). Otherwise the chain decides and m
// keeps the decisions if every policy calls its own reusable.
func (c Chain) DecideReusing(ctx context.Context, st *Statement, m *Memo, now time.Time) Outcome {
	if out, ok := c.Reuse(st, m, now); ok {
		return out
	}
	return c.DecideMemo(ctx, st, m, now)
}

// DecideMemo is DecideReusing's other half, for a caller that tried Reuse
// itself: the chain decides, and m keeps the decisions, made at now, if
// every policy calls its own reusable.
func (c Chain) DecideMemo(ctx context.Context, st *Statement, m *Memo, now time.Time) Outcome {
	epoch, reusable := c.epoch()
	if !reusable {
		m.ok = false
		return c.decide(ctx, st, nil)
	}
	if len(m.decisions) != len(c) {
		m.decisions = make([]Decision, len(c))
	}
	out := c.decide(ctx, st, m.decisions)
	m.ok = out.Action == Allow && len(out.Hooks) == 0 && out.Leg == "" && !out.Rewritten
	for i, p := range c {
		if !m.ok {
			break
		}
		m.ok = p.(Reuser).Reusable(st, m.decisions[i])
	}
	if m.ok {
		m.epoch, m.at = epoch, now
	}
	return out
}
