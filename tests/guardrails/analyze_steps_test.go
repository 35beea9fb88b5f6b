package guardrails

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// analyzeRun is the last `pgproxy analyze` a scenario ran.
type analyzeRun struct {
	status int
	output string
}

// registerAnalyzeSteps are the steps of analyze.feature: the real binary,
// run as a developer would, with the scenario's environment.
func registerAnalyzeSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^the environment has (\w+)=(\S+) and (\w+)=(\S+)$`, func(k1, v1, k2, v2 string) error {
		w.env[k1], w.env[k2] = v1, v2
		return nil
	})
	sc.Step(`^a developer runs pgproxy analyze "(.*)"$`, w.analyze)
	sc.Step(`^it exits with status (\d)$`, func(want int) error {
		if w.analyzed.status != want {
			return fmt.Errorf("exit status %d, want %d; output:\n%s", w.analyzed.status, want, w.analyzed.output)
		}
		return nil
	})
	sc.Step(`^its output has a line "(.*)"$`, func(line string) error {
		return w.analyzedLine(func(l string) bool { return l == line }, "a line "+line)
	})
	sc.Step(`^its output has a line starting "(.*)"$`, func(prefix string) error {
		return w.analyzedLine(func(l string) bool { return strings.HasPrefix(l, prefix) }, "a line starting "+prefix)
	})
	sc.Step(`^its output contains "(.*)"$`, func(text string) error {
		if !strings.Contains(w.analyzed.output, text) {
			return fmt.Errorf("no %q in the output:\n%s", text, w.analyzed.output)
		}
		return nil
	})
	sc.Step(`^its output does not contain "(.*)"$`, func(text string) error {
		if strings.Contains(w.analyzed.output, text) {
			return fmt.Errorf("%q in the output:\n%s", text, w.analyzed.output)
		}
		return nil
	})
	sc.Step(`^its output names the fingerprint of "(.*)"$`, func(sql string) error {
		p := sqlparse.NewParser(4).Parse(sql)
		if p.Err != nil {
			return p.Err
		}
		return w.analyzedLine(func(l string) bool { return l == "fingerprint: "+p.Fingerprint() }, "the fingerprint "+p.Fingerprint())
	})
}

// analyze runs `pgproxy analyze sql` with the scenario's environment in an
// empty directory (no ./.env), keeping its exit status and output.
func (w *world) analyze(sql string) error { return w.runProxyCommand("analyze", sql) }

// runProxyCommand runs pgproxy with args (a command: analyze,
// generate-config) against the fast node with the scenario's environment,
// and keeps its output and exit status.
func (w *world) runProxyCommand(args ...string) error {
	if err := servers(w.t); err != nil {
		return err
	}
	bin := harness.BuildProxy(w.t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = w.t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "PG_BACKEND_URL=" + backendURL(shared.fast)}
	if v, ok := os.LookupEnv("GOCOVERDIR"); ok {
		cmd.Env = append(cmd.Env, "GOCOVERDIR="+v)
	}
	for k, v := range w.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	w.analyzed = analyzeRun{output: string(out)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		w.analyzed.status = exit.ExitCode()
	case err != nil:
		return fmt.Errorf("pgproxy %s: %w", args[0], err)
	}
	w.t.Logf("pgproxy %q: exit %d\n%s", args, w.analyzed.status, out)
	return nil
}

func (w *world) analyzedLine(match func(string) bool, what string) error {
	for _, l := range strings.Split(w.analyzed.output, "\n") {
		if match(l) {
			return nil
		}
	}
	return fmt.Errorf("no %s in the output:\n%s", what, w.analyzed.output)
}
