package masking

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// inferMasking is the masking file of the inference scenarios: customers
// named, everything else judged by the proxy.
const inferMasking = `version: "1.0"
unknown_table_behavior: llm_inference
tables:
  - table: customers
    columns:
      - name: email
        mask_type: email
`

// The tables the inference scenarios make; dropped before each.
const inferTables = `DROP TABLE IF EXISTS inf_members, inf_late;`

// membersTable has an e-mail column (the detectors decide it), a
// reference in a passport-like shape (low: the model decides) and a plan.
const membersTable = `CREATE TABLE inf_members (id int PRIMARY KEY, email text NOT NULL, member_ref text NOT NULL, plan text NOT NULL);
INSERT INTO inf_members SELECT i, 'member' || i || '@example.org', 'MR' || lpad((i * 7919 % 10000000)::text, 7, '0'),
	(ARRAY['basic','gold'])[1 + i % 2] FROM generate_series(1, 300) i;
ANALYZE inf_members; GRANT SELECT ON inf_members TO PUBLIC;`

// inferWorld is what the inference scenarios add to the world.
type inferWorld struct {
	model *harness.ModelServer
	env   map[string]string
}

func registerInferSteps(sc *godog.ScenarioContext, w *world) {
	iw := &inferWorld{}
	sc.Step(`^a model provider that calls the column "(\w+)" a passport number$`, func(column string) error {
		iw.start(w)
		iw.classify(column)
		return nil
	})
	sc.Step(`^a model provider that fails with HTTP (\d+)$`, func(status int) error {
		iw.start(w)
		iw.model.Answer(func(harness.ModelCall) harness.ModelReply { return harness.ModelReply{Status: status} })
		return nil
	})
	sc.Step(`^the model provider now calls the column "(\w+)" a passport number$`, func(column string) error {
		iw.classify(column)
		return nil
	})
	sc.Step(`^the database has a table inf_members with e-mail addresses, member references and plans$`, func() error {
		return shared.pg.SuperuserExec(inferTables + membersTable)
	})
	sc.Step(`^a proxy of its own that infers the masks of the tables its file does not name$`, func() error {
		w.ownPath = filepath.Join(w.t.TempDir(), "masking.yaml")
		if err := os.WriteFile(w.ownPath, []byte(inferMasking), 0o644); err != nil {
			return err
		}
		env := proxyEnv(w.ownPath)
		for k, v := range iw.env {
			env[k] = v
		}
		if w.ownProxies == nil {
			w.ownProxies = map[string]*harness.Proxy{}
		}
		w.ownProxies["own"] = harness.StartProxy(w.t, env)
		return nil
	})
	sc.Step(`^a table inf_late with e-mail addresses is created on the server directly$`, func() error {
		return shared.pg.SuperuserExec(`DROP TABLE IF EXISTS inf_late;
CREATE TABLE inf_late (id int PRIMARY KEY, contact text NOT NULL);
INSERT INTO inf_late SELECT i, 'late' || i || '@example.net' FROM generate_series(1, 50) i;
GRANT SELECT ON inf_late TO PUBLIC;`)
	})
	sc.Step(`^(\w+) reads (\w+)\.(\w+) of row (\d+) through its own proxy (masked|in clear)$`, func(role, table, column, id, how string) error {
		return w.readMaskedOrClear(role, table, column, id, how)
	})
	sc.Step(`^within (\d+) seconds (\w+) reads (\w+)\.(\w+) of row (\d+) through its own proxy masked$`, func(secs int, role, table, column, id string) error {
		deadline := time.Now().Add(time.Duration(secs) * time.Second)
		for {
			err := w.readMaskedOrClear(role, table, column, id, "masked")
			if err == nil || time.Now().After(deadline) {
				return err
			}
			time.Sleep(300 * time.Millisecond)
		}
	})
	sc.Step(`^the model was asked about the column "(\w+)" only, shown the shape "(.*)" and never "(.*)"$`, func(column, shape, never string) error {
		calls := iw.model.Calls()
		if len(calls) == 0 {
			return fmt.Errorf("the model was not asked")
		}
		shown := false
		for _, c := range calls {
			if !strings.Contains(c.Text, `"name": "`+column+`"`) {
				return fmt.Errorf("the model was asked about another column:\n%s", c.Text)
			}
			if strings.Contains(c.Text, never) || strings.Contains(c.System, never) {
				return fmt.Errorf("the model was shown %q:\n%s", never, c.Text)
			}
			shown = shown || strings.Contains(c.Text, `"shape": "`+shape+`"`)
		}
		if !shown {
			return fmt.Errorf("no request showed the shape %q", shape)
		}
		return nil
	})
	sc.Step(`^a second has passed$`, func() error {
		time.Sleep(1100 * time.Millisecond)
		return nil
	})
	sc.Step(`^it fails with SQLSTATE (\w+)$`, func(code string) error {
		var pe *pgconn.PgError
		if !errors.As(w.last.err, &pe) || pe.Code != code {
			return fmt.Errorf("%s: %v, not SQLSTATE %s", w.last.sql, w.last.err, code)
		}
		return nil
	})
	sc.Step(`^pgproxy starts without a language model with the masking file:$`, w.startWith)
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		if iw.model != nil {
			_ = shared.pg.SuperuserExec(inferTables)
		}
		*iw = inferWorld{}
		return ctx, err
	})
}

// start starts the scenario's model server (Anthropic's Messages API).
func (iw *inferWorld) start(w *world) {
	iw.model = harness.StartModelServer(w.t, nil)
	iw.env = map[string]string{
		"LLM_PROVIDER": "anthropic", "ANTHROPIC_BASE_URL": iw.model.URL, "ANTHROPIC_API_KEY": iw.model.AnthropicKey,
		"ANALYSIS_LLM_RETRIES": "0", "ANALYSIS_LLM_BREAKER_PAUSE": "1s", "ANALYSIS_LLM_TIMEOUT": "5s",
	}
}

// classify scripts the model: column is a passport number, any other is
// not sensitive.
func (iw *inferWorld) classify(column string) {
	iw.model.Answer(func(c harness.ModelCall) harness.ModelReply {
		verdict := map[string]any{"sensitive": false, "kind": "none", "reason": "nothing in the name or shapes says a person"}
		if strings.Contains(c.Text, `"name": "`+column+`"`) {
			verdict = map[string]any{"sensitive": true, "kind": "passport", "reason": "a membership reference in a passport-like shape"}
		}
		return harness.ModelReply{Tool: "classify", Input: verdict}
	})
}

// readMaskedOrClear reads one value through the scenario's own proxy (a
// new session each time) and compares it with a direct read: masked means
// it differs, in clear that it is the same.
func (w *world) readMaskedOrClear(role, table, column, id, how string) error {
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE id = %s", column, table, id)
	if err := w.read("dba_lead", "directly", sql); err != nil {
		return err
	}
	if len(w.values) != 1 || w.values[0] == nil {
		return fmt.Errorf("%s directly: %d rows", sql, len(w.values))
	}
	clear := *w.values[0]
	if err := w.newSession(role, func() error { return w.read(role, "through its own proxy", sql) }); err != nil {
		return err
	}
	if len(w.values) != 1 {
		return fmt.Errorf("%s: %d rows", sql, len(w.values))
	}
	got := w.values[0]
	switch {
	case how == "masked" && got != nil && *got == clear:
		return fmt.Errorf("%s.%s of row %s is in clear through the proxy: %q", table, column, id, clear)
	case how == "in clear" && (got == nil || *got != clear):
		return fmt.Errorf("%s.%s of row %s is %v through the proxy, %q directly", table, column, id, got, clear)
	}
	return nil
}
