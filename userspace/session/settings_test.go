package session

import (
	"testing"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

func TestSettingsGuard(t *testing.T) {
	g := &SettingsGuard{Fixed: []string{"standard_conforming_strings", "client_min_messages", "debug_print_"},
		Required: map[string]string{"standard_conforming_strings": "on"}, Why: "data masking is on"}
	refused := [][]wire.Param{
		{{Name: "options", Value: "-c client_min_messages=log"}},
		{{Name: "options", Value: "-cclient_min_messages=log"}},
		{{Name: "options", Value: "--client-min-messages=log"}},
		{{Name: "options", Value: "-c work_mem=64MB -c Standard_Conforming_Strings=off"}},
		{{Name: "options", Value: "-c debug_print_parse=on"}},
		{{Name: "options", Value: `-c client\_min\_messages=log`}},
		{{Name: "options", Value: `-c debug\_print\_parse=on`}},
		{{Name: "options", Value: `--client\-min-messages=log`}},
		{{Name: "client_min_messages", Value: "log"}},
		{{Name: "Standard_Conforming_Strings", Value: "off"}},
		{{Name: "debug_print_plan", Value: "on"}},
	}
	for _, params := range refused {
		e := g.startup(params)
		if e == nil || e.Code != wire.CodeInvalidAuthorization || e.Severity != "FATAL" {
			t.Errorf("%v: %v, want a FATAL 28000", params, e)
		}
	}
	for _, params := range [][]wire.Param{
		{{Name: "user", Value: "analyst"}, {Name: "application_name", Value: "psql"}},
		{{Name: "options", Value: "-c work_mem=64MB -c search_path=app"}},
		{{Name: "datestyle", Value: "ISO"}},
	} {
		if e := g.startup(params); e != nil {
			t.Errorf("%v: refused: %v", params, e)
		}
	}
	if e := g.reported("standard_conforming_strings", "off"); e == nil || e.Code != wire.CodeInsufficientPrivilege {
		t.Errorf("standard_conforming_strings off reported: %v, want 42501", e)
	}
	if g.reported("standard_conforming_strings", "on") != nil || g.reported("client_encoding", "LATIN1") != nil {
		t.Error("an allowed value was refused")
	}
	var none *SettingsGuard
	if none.startup(refused[0]) != nil || none.reported("standard_conforming_strings", "off") != nil {
		t.Error("a nil guard refused")
	}
}
