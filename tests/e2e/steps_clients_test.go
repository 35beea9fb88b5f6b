package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"time"

	"github.com/cucumber/godog"

	"github.com/pgproxy/pgproxy/tests/harness"
)

// registerClientSteps defines the steps that run other real clients (psql) through the proxy.
func registerClientSteps(sc *godog.ScenarioContext, w *world) {
	sc.Step(`^psql as "([^"]*)" imports a (\d+) KB file as a large object$`, w.psqlImport)
	sc.Step(`^psql exports that large object to a file identical to the original$`, w.psqlExport)
	sc.Step(`^psql unlinks that large object$`, func() error {
		_, err := w.psql(fmt.Sprintf(`\lo_unlink %s`, w.scratch["lo oid"]))
		return err
	})
}

var loImportOID = regexp.MustCompile(`lo_import (\d+)`)

// psql runs one psql meta-command or statement through the proxy as the user of the last
// psqlImport and returns its output.
func (w *world) psql(command string) (string, error) {
	harness.Require(w.t, "psql")
	user, _ := w.scratch["psql user"].(string)
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "psql", "-X", "-v", "ON_ERROR_STOP=1",
		"-d", w.dsn(user, passwords[user], "", "application_name=e2e-psql"), "-c", command)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("psql -c %q: %w\nstdout: %s\nstderr: %s", command, err, out, stderr.String())
	}
	return string(out), nil
}

// loDir is a folder for large-object files whose path psql can quote as is.
func (w *world) loDir() string {
	if d, ok := w.scratch["lo dir"].(string); ok {
		return d
	}
	d, err := os.MkdirTemp("", "pgproxy-e2e-lo-")
	if err != nil {
		w.t.Fatalf("temporary folder: %v", err)
	}
	w.t.Cleanup(func() { _ = os.RemoveAll(d) })
	w.scratch["lo dir"] = d
	return d
}

func (w *world) psqlImport(user string, kb int) error {
	w.scratch["psql user"] = user
	data := make([]byte, kb<<10)
	_, _ = rand.Read(data)
	src := filepath.Join(w.loDir(), "original.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	w.scratch["lo original"] = data
	out, err := w.psql(fmt.Sprintf(`\lo_import '%s'`, src))
	if err != nil {
		return err
	}
	m := loImportOID.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("psql \\lo_import printed %q, no OID", out)
	}
	w.scratch["lo oid"] = m[1]
	return nil
}

func (w *world) psqlExport() error {
	oid, ok := w.scratch["lo oid"].(string)
	if !ok {
		return fmt.Errorf("no large object was imported")
	}
	dst := filepath.Join(w.loDir(), "exported.bin")
	// psql runs as root here and writes the file itself (client side), so the server's OS user
	// needs no access to the folder.
	if _, err := w.psql(fmt.Sprintf(`\lo_export %s '%s'`, oid, dst)); err != nil {
		return err
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		return err
	}
	if want := w.scratch["lo original"].([]byte); !bytes.Equal(got, want) {
		return fmt.Errorf("exported %d bytes differ from the %d imported", len(got), len(want))
	}
	return nil
}
