package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/term"

	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/masking/generate"
)

// generatorRequested reports whether the command line asks for the
// masking file generator, and returns its arguments: `pgproxy
// generate-config [flags]`, or `pgproxy [flags]` with
// CONFIG_GENERATOR_MODE=true in the environment or ./.env.
func generatorRequested(args []string) ([]string, bool) {
	if len(args) > 0 && args[0] == "generate-config" {
		return args[1:], true
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return nil, false
	}
	getenv, err := config.Environment(".env")
	if err != nil {
		return nil, false // the proxy's own start-up reports it
	}
	g, err := config.LoadGenerator(getenv)
	return args, err == nil && g.Mode
}

// generateCommand is `pgproxy generate-config`: it scans PG_BACKEND_URL's
// database (the schemas of CONFIG_GENERATOR_SCHEMAS), samples every table
// and writes MASKING_CONFIG_PATH for review. Exit status: 0 written, 1 the
// scan failed, 2 the configuration or the command line is wrong (an
// existing file without --force).
func generateCommand(args []string) int {
	fs := flag.NewFlagSet("generate-config", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	force := fs.Bool("force", false, "overwrite the output file when it exists")
	output := fs.String("o", "", "output file (default: MASKING_CONFIG_PATH)")
	schemas := fs.String("schemas", "", "schemas to scan, a comma list or all (default: CONFIG_GENERATOR_SCHEMAS)")
	rows := fs.Int("sample-rows", generate.DefaultSampleRows, "rows sampled per table (2 to 100000)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: pgproxy generate-config [--force] [-o file] [--schemas list|all] [--sample-rows n]\n\n"+
			"Scans the tables of PG_BACKEND_URL's database, judges every column from its name and a sample\n"+
			"of its values, and writes a masking file (MASKING_CONFIG_PATH) with one comment per column\n"+
			"giving the confidence and the evidence, for review before MASKING_ENABLED=true. Sampled values\n"+
			"are never printed or written. The same runs as `pgproxy` with CONFIG_GENERATOR_MODE=true.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "pgproxy generate-config: "+format+"\n", args...)
		return code
	}
	if *rows < 2 || *rows > 100_000 {
		return fail(2, "--sample-rows=%d: sample 2 to 100000 rows (one row says nothing of a column)", *rows)
	}
	getenv, err := config.Environment(".env")
	if err != nil {
		return fail(2, "invalid configuration:\n%v", err)
	}
	// The generator writes the masking file: MASKING_ENABLED's check that
	// it exists does not apply.
	cfg, err := config.Load(func(name string) string {
		if name == "MASKING_ENABLED" {
			return "false"
		}
		return getenv(name)
	})
	if err != nil {
		return fail(2, "invalid configuration:\n%v\n\nRun pgproxy --help for every variable and its default.", err)
	}
	gen := cfg.Generator
	if *schemas != "" {
		if gen.AllSchemas, gen.Schemas, err = config.ParseGeneratorSchemas(*schemas); err != nil {
			return fail(2, "--schemas%v", err)
		}
	}
	if cfg.Backend.User == "" {
		return fail(2, "PG_BACKEND_URL needs a user and password (postgres://user:password@host/db), or PG_IAM_AUTH with PG_IAM_USERNAME: the generator reads the tables on its own connection")
	}
	path := cfg.Masking.ConfigPath
	if *output != "" {
		path = *output
	}
	if _, err := os.Lstat(path); err == nil && !*force {
		return fail(2, "%s already exists: pass --force to overwrite it, or set MASKING_CONFIG_PATH (or -o) to another file", path)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	conn, err := generatorConn(ctx, cfg)
	if err != nil {
		return fail(1, "cannot connect to %s: %v\n(check the host, port, user and password of PG_BACKEND_URL, and that the server accepts this account)",
			cfg.Backend.String(), err)
	}
	defer conn.Close(context.Background())

	var progress generate.Progress = generate.NewLines(os.Stderr)
	if term.IsTerminal(int(os.Stderr.Fd())) {
		progress = generate.NewBar(os.Stderr)
	}
	var model *generate.Model
	if cfg.LLM.Provider != "" && cfg.Generator.LLM {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		agent, err := newAgent(ctx, cfg, log, nil)
		if err != nil {
			return fail(2, "%v", err)
		}
		model = &generate.Model{Agent: agent, Samples: cfg.Generator.LLMSamples, Timeout: cfg.LLM.Timeout}
		what := "the shapes of their values, never the values"
		if model.Samples {
			what = "the shapes of their values and up to 5 sampled values (CONFIG_GENERATOR_LLM_SAMPLES=true)"
		}
		fmt.Fprintf(os.Stderr, "pgproxy generate-config: columns the detectors cannot decide go to %s/%s with %s\n",
			agent.Client.Provider.Name(), agent.Client.Provider.Model(), what)
	}
	started := time.Now()
	res, err := generate.Scan(ctx, conn, generate.Options{
		Schemas: gen.Schemas, AllSchemas: gen.AllSchemas, SampleRows: *rows,
		HMAC: len(cfg.Masking.HMACKey) > 0, Progress: progress, Model: model,
	})
	var se *generate.SchemaError
	switch {
	case errors.As(err, &se), errors.Is(err, generate.ErrNoTables):
		return fail(1, "%v", err)
	case err != nil:
		return fail(1, "scanning database %s: %v", cfg.Backend.Database, err)
	}
	data, err := generate.Render(res)
	if err != nil {
		return fail(1, "%v", err)
	}
	if err := writeNew(path, data, *force); err != nil {
		return fail(1, "writing %s: %v", path, err)
	}
	var tables, masked, review, skipped int
	for i := range res.Tables {
		t := &res.Tables[i]
		if t.Skipped != "" {
			skipped++
			continue
		}
		if n := len(t.Masked()); n > 0 {
			tables++
			masked += n
		}
		for _, f := range t.Findings {
			if f.Confidence == generate.Low {
				review++
			}
		}
	}
	fmt.Printf("wrote %s: %d column%s masked in %d of %d tables, %d low-confidence candidate%s left commented out",
		path, masked, plural(masked), tables, len(res.Tables), review, plural(review))
	if skipped > 0 {
		fmt.Printf(", %d table%s not scanned (see the warnings)", skipped, plural(skipped))
	}
	fmt.Printf(" (%.1fs).\nReview it, then run the proxy with MASKING_ENABLED=true and MASKING_CONFIG_PATH=%s.\n",
		time.Since(started).Seconds(), path)
	return 0
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// generatorConn opens the scan's connection with PG_BACKEND_URL's account
// through the proxy's own dialer (TLS as PG_BACKEND_URL asks): read-only,
// and bounded so that a huge or locked table cannot hang the run.
func generatorConn(ctx context.Context, cfg *config.Config) (*pgx.Conn, error) {
	dialer, err := backend.DialerFor(cfg, nil)
	if err != nil {
		return nil, err
	}
	tokens, err := iamTokens(ctx, cfg, slog.Default(), nil)
	if err != nil {
		return nil, err
	}
	pcfg, err := backend.PoolConfig(cfg.Backend, dialer, cfg.Backend.Addr(), cfg.Backend.Database, "pgproxy-generate-config", tokens)
	if err != nil {
		return nil, err
	}
	cc := pcfg.ConnConfig
	if pcfg.BeforeConnect != nil { // an IAM login: the token
		if err := pcfg.BeforeConnect(ctx, cc); err != nil {
			return nil, err
		}
	}
	cc.DefaultQueryExecMode = pgx.QueryExecModeExec
	cc.RuntimeParams["default_transaction_read_only"] = "on"
	cc.RuntimeParams["statement_timeout"] = strconv.Itoa(int((60 * time.Second).Milliseconds()))
	cc.RuntimeParams["lock_timeout"] = strconv.Itoa(int((5 * time.Second).Milliseconds()))
	cctx, cancel := context.WithTimeout(ctx, cfg.BackendConnectTimeout+5*time.Second)
	defer cancel()
	return pgx.ConnectConfig(cctx, cc)
}

// writeNew writes data to path through a temporary file in the same
// folder: renamed over path with force, else linked (which fails when path
// appeared meanwhile), so the file is whole or absent.
func writeNew(path string, data []byte, force bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if force {
		return os.Rename(tmp.Name(), path)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("it was created meanwhile: pass --force to overwrite it")
		}
		return err
	}
	return nil
}
