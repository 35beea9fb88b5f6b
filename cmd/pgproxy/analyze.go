package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/pgproxy/pgproxy/userspace/analysis"
	"github.com/pgproxy/pgproxy/userspace/backend"
	"github.com/pgproxy/pgproxy/userspace/config"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// analyzeCommand is `pgproxy analyze [-d database] 'SQL'`: the decision the
// guardrails would make for one statement, with the same configuration
// (thresholds, overrides, PG_BACKEND_URL's account), analysed afresh (the
// decision cache is neither read nor written). Exit status: 0 efficient,
// 1 inefficient, 2 the statement or the configuration is wrong.
func analyzeCommand(args []string) int {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	db := fs.String("d", "", "database (default: PG_BACKEND_URL's)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: pgproxy analyze [-d database] 'SQL'\n\n"+
			"Prints the decision the guardrails make for one read statement (rules, then the planner),\n"+
			"with the configuration of the environment and ./.env. Exit status 0: efficient, 1: inefficient.\n")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	sql := fs.Arg(0)
	if sql == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgproxy analyze:", err)
			return 2
		}
		sql = string(b)
	}
	cfg, err := loadConfig(false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgproxy analyze: invalid configuration:\n%v\n", err)
		return 2
	}
	if cfg.Backend.User == "" {
		fmt.Fprintln(os.Stderr, "pgproxy analyze: PG_BACKEND_URL needs a user and password, or PG_IAM_AUTH with PG_IAM_USERNAME: the analysis reads catalogs and plans on its own connection")
		return 2
	}
	parser := sqlparse.NewParser(16)
	parsed := parser.Parse(strings.TrimSpace(sql))
	if parsed.Err != nil {
		fmt.Fprintln(os.Stderr, "pgproxy analyze: the statement does not parse:", parsed.Err)
		return 2
	}
	if len(parsed.Tree().Stmts) != 1 || !sqlparse.IsRead(parsed.Tree().Stmts[0].Stmt) {
		fmt.Println("not analysed: the guardrails judge one read statement (SELECT, WITH … SELECT, TABLE, VALUES) at a time")
		return 0
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Guardrails.ValkeyURL = "" // analysed afresh: the in-process cache of this run starts empty
	dialer, err := backend.DialerFor(cfg, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgproxy analyze:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tokens, err := iamTokens(ctx, cfg, log, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgproxy analyze:", err)
		return 2
	}
	agent, err := modelAgent(ctx, cfg, log, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgproxy analyze:", err)
		return 2
	}
	g, err := newGuard(ctx, cfg, log, nil, parser, dialer, tokens, agent)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgproxy analyze:", err)
		return 2
	}
	defer g.close(ctx)
	database := *db
	if database == "" {
		database = cfg.Backend.Database
	}
	d := g.analyzer.Decide(ctx, analysis.Request{Backend: cfg.Backend.Addr(), Database: database, Parsed: parsed})
	fmt.Printf("fingerprint: %s\ndatabase: %s\n%s", parsed.Fingerprint(), database, d.Describe())
	if d.Check != "" {
		fmt.Printf("check: %s\n", d.Check)
	}
	if d.Model != "" {
		fmt.Printf("model: %s\n", d.Model)
	}
	fmt.Printf("in PROXY_MODE=%s: %s\n", cfg.Guardrails.Mode, modeAction(cfg.Guardrails.Mode, d))
	if d.Verdict == analysis.Inefficient {
		return 1
	}
	return 0
}

// modeAction says what the mode does with a decision.
func modeAction(mode string, d analysis.Decision) string {
	if d.Verdict != analysis.Inefficient {
		return "runs on the fast node"
	}
	switch mode {
	case config.ModeNonBlocking:
		return "runs, and is recorded in query_issues"
	case config.ModeShunt:
		return "runs on the shunt node"
	}
	return "refused with SQLSTATE 54000"
}
