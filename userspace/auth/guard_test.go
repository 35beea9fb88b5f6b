package auth

import (
	"context"
	"testing"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/stmt"
)

func TestLockedSettingsRefusesChangesOfLockedSettingsOnly(t *testing.T) {
	parser := sqlparse.NewParser(16)
	token := &stmt.Facts{Identity: "alice@example.com", Locked: map[string]string{"application_name": "jwt:alice@example.com"}}
	passthrough := &stmt.Facts{User: "alice"}
	cases := []struct {
		facts  *stmt.Facts
		proto  stmt.Protocol
		sql    string
		refuse bool
	}{
		{token, stmt.Simple, "SET application_name = 'x'", true},
		{token, stmt.Parse, "SELECT set_config('application_name', $1, false)", true},
		{token, stmt.Simple, "SET search_path = public", false},
		{token, stmt.Simple, "SELEC broken", false}, // the server rejects it itself
		{token, stmt.Bind, "SELECT set_config('application_name', $1, false)", false},
		{passthrough, stmt.Simple, "SET application_name = 'x'", false},
	}
	for _, c := range cases {
		var st stmt.Statement
		st.Reset(c.proto, "", "", c.sql, nil, c.facts, parser)
		d := LockedSettings{}.Decide(context.Background(), &st)
		if (d.Action == stmt.Refuse) != c.refuse {
			t.Errorf("%s (%v, identity %q): %+v", c.sql, c.proto, c.facts.Identity, d)
		}
		if d.Action == stmt.Refuse && (d.Err.Code != "42501" || d.Err.Severity != "ERROR" || d.Source != "guard") {
			t.Errorf("%s: refusal %+v", c.sql, d.Err)
		}
	}
}
