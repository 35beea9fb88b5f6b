package auth

import (
	"context"
	"fmt"
	"sort"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// LockedSettings is the statement policy that keeps a session's locked
// settings (application_name = jwt:<identity> in token sessions): SET, SET
// LOCAL, RESET, set_config() and UPDATE pg_settings of one of them, found in
// the parse tree, are refused with SQLSTATE 42501. Sessions without locked
// settings (passthrough) are not looked at. Text the parser rejects goes on:
// the server rejects it too. What the parser cannot see (a function, a DO
// block) is caught by the session's ParameterStatus backstop.
type LockedSettings struct{}

// Epoch implements stmt.Reuser: the guard does not look at Binds.
func (LockedSettings) Epoch() uint64 { return 0 }

// Reusable implements stmt.Reuser: the guard reads a text's shape only.
func (LockedSettings) Reusable(*stmt.Statement, stmt.Decision) bool { return true }

// Reused implements stmt.Reuser.
func (LockedSettings) Reused(_ *stmt.Statement, d stmt.Decision) stmt.Decision { return d }

// Decide implements stmt.Policy.
func (LockedSettings) Decide(_ context.Context, st *stmt.Statement) stmt.Decision {
	if st.Facts == nil || len(st.Facts.Locked) == 0 || st.Protocol == stmt.Bind {
		return stmt.Decision{}
	}
	parsed := st.Parsed()
	if parsed.Err != nil {
		return stmt.Decision{}
	}
	names := make([]string, 0, len(st.Facts.Locked))
	for name := range st.Facts.Locked {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if sqlparse.ChangesSetting(parsed.ShapeTree(), name) {
			return stmt.Decision{Action: stmt.Refuse, Source: "guard",
				Err: wire.Refusal(wire.CodeInsufficientPrivilege,
					fmt.Sprintf("%s is set by pgproxy to the authenticated identity and cannot be changed", name))}
		}
	}
	return stmt.Decision{}
}
