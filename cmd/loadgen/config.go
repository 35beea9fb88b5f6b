package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultQuery is a cheap statement that still makes a full round trip to the server.
const defaultQuery = "SELECT 1"

// modes maps the -mode flag to the pgx execution mode used for every query.
var modes = map[string]pgx.QueryExecMode{
	"simple":   pgx.QueryExecModeSimpleProtocol, // Query message
	"extended": pgx.QueryExecModeExec,           // unnamed Parse/Bind/Describe/Execute/Sync
	"prepared": pgx.QueryExecModeCacheStatement, // named statement prepared once, then Bind/Execute
}

// config is the parsed command line.
type config struct {
	Conn     string
	Workers  int
	Duration time.Duration
	Rampup   time.Duration
	Query    string
	Mode     string
	ExecMode pgx.QueryExecMode
	// Idle makes each worker connect, run the query once and then hold its connection open
	// without further queries until the duration ends (0: until interrupted).
	Idle bool
	// Progress is the interval of the live progress line on stderr; 0 turns it off.
	Progress time.Duration
}

// parseConfig parses the command-line arguments (without the program name). Usage and errors
// are written to stderr. It returns flag.ErrHelp for -h/-help, and an error matching errUsage
// for an invalid command line.
func parseConfig(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Conn, "conn", "",
		"connection string, URL or key=value form (default $DATABASE_URL); PG* variables fill in the rest")
	fs.IntVar(&cfg.Workers, "workers", 10, "concurrent connections, one query at a time each")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second,
		"total run time including ramp-up (with -idle, 0 holds until interrupted)")
	fs.DurationVar(&cfg.Rampup, "rampup", 5*time.Second, "workers start evenly spread over this time")
	fs.StringVar(&cfg.Query, "query", defaultQuery, "statement every worker runs in a loop")
	queryFile := fs.String("query-file", "", "read the statement from this file instead of -query (one statement; several only with -mode simple)")
	fs.StringVar(&cfg.Mode, "mode", "simple",
		"protocol: simple (Query), extended (unnamed Parse/Bind/Execute) or prepared (cached named statement)")
	fs.BoolVar(&cfg.Idle, "idle", false,
		"connect every worker, run the query once, then hold the connections open without load")
	fs.DurationVar(&cfg.Progress, "progress", time.Second, "interval of the progress line on stderr; 0 disables it")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: loadgen -conn CONNSTRING [flags]\n\n"+
			"Runs a statement in a loop on -workers connections and reports TPS and latency.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, errors.Join(errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	if *queryFile != "" {
		if isSet(fs, "query") {
			return nil, usageError(fs, "-query and -query-file are mutually exclusive")
		}
		b, err := os.ReadFile(*queryFile)
		if err != nil {
			return nil, usageError(fs, "-query-file: %v", err)
		}
		cfg.Query = string(b)
	}
	cfg.Query = strings.TrimSpace(cfg.Query)
	if cfg.Conn == "" {
		cfg.Conn = os.Getenv("DATABASE_URL")
	}
	var ok bool
	switch {
	case cfg.Conn == "":
		return nil, usageError(fs, "-conn is required (or set DATABASE_URL)")
	case cfg.Workers < 1:
		return nil, usageError(fs, "-workers must be at least 1, got %d", cfg.Workers)
	case cfg.Duration < 0 || (cfg.Duration == 0 && !cfg.Idle):
		return nil, usageError(fs, "-duration must be positive, got %s", cfg.Duration)
	case cfg.Rampup < 0:
		return nil, usageError(fs, "-rampup must not be negative, got %s", cfg.Rampup)
	case cfg.Duration > 0 && cfg.Rampup >= cfg.Duration:
		return nil, usageError(fs, "-rampup (%s) must be shorter than -duration (%s)", cfg.Rampup, cfg.Duration)
	case cfg.Query == "":
		return nil, usageError(fs, "the query is empty")
	case cfg.Progress < 0:
		return nil, usageError(fs, "-progress must not be negative, got %s", cfg.Progress)
	}
	if cfg.ExecMode, ok = modes[cfg.Mode]; !ok {
		return nil, usageError(fs, "-mode must be simple, extended or prepared, got %q", cfg.Mode)
	}
	return cfg, nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// usageError prints the message the way the flag package prints its own errors and returns it.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	fmt.Fprintf(fs.Output(), "loadgen: %v\nRun loadgen -help for the flags.\n", err)
	return errors.Join(errUsage, err)
}

// errUsage marks errors in the command line (exit status 2).
var errUsage = errors.New("usage")
