package session

import (
	"fmt"
	"strings"

	"github.com/pgproxy/pgproxy/userspace/wire"
)

// SettingsGuard keeps settings a policy relies on out of the client's
// reach where the statement policies cannot see them: the startup packet
// (its parameters, and the -c and --name=value switches of options), and
// values the server reports (ParameterStatus), which also show role and
// database defaults.
type SettingsGuard struct {
	// Fixed are settings the client may not choose at startup (a name
	// ending in "_" is a prefix: "debug_print_").
	Fixed []string
	// Required are reported settings that must keep these values; another
	// value ends the session.
	Required map[string]string
	// Why ends the refusals' messages ("data masking is on").
	Why string
}

// startup refuses startup parameters that choose a fixed setting.
func (g *SettingsGuard) startup(params []wire.Param) *wire.Error {
	if g == nil {
		return nil
	}
	for _, p := range params {
		name := strings.ToLower(p.Name)
		if name == "options" {
			// PostgreSQL reads "-c name=value" and "--name=value", with
			// dashes for underscores in either: look for the name in a
			// form with the same folding, anywhere in the value.
			// A backslash escapes the next character there
			// ("client\_min\_messages"): it is dropped before looking.
			opts := strings.ReplaceAll(strings.ToLower(p.Value), "\\", "")
			opts = strings.ReplaceAll(opts, "-", "_")
			for _, f := range g.Fixed {
				if strings.Contains(opts, f) {
					return g.refusal(f, "in the startup options")
				}
			}
			continue
		}
		name = strings.ReplaceAll(name, "-", "_")
		for _, f := range g.Fixed {
			if name == f || (strings.HasSuffix(f, "_") && strings.HasPrefix(name, f)) {
				return g.refusal(name, "as a startup parameter")
			}
		}
	}
	return nil
}

// reported checks a value the server reported.
func (g *SettingsGuard) reported(name, value string) *wire.Error {
	if g == nil {
		return nil
	}
	if want, ok := g.Required[name]; ok && value != want {
		return wire.Fatal(wire.CodeInsufficientPrivilege,
			fmt.Sprintf("pgproxy requires %s = %s while %s, and this session has %s (a role or database default?)", name, want, g.Why, value)).
			WithHint(fmt.Sprintf("ALTER ROLE ... RESET %s, or connect directly", name))
	}
	return nil
}

func (g *SettingsGuard) refusal(name, where string) *wire.Error {
	return wire.Fatal(wire.CodeInvalidAuthorization,
		fmt.Sprintf("pgproxy does not let clients set %s %s while %s", name, where, g.Why))
}
