package generate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/pgproxy/pgproxy/userspace/masking"
)

// DefaultInferRows is how many rows of a table the running proxy samples
// to judge it (unknown_table_behavior: llm_inference).
const DefaultInferRows = 200

// maxRemembered bounds the tables whose verdicts an Inferrer keeps.
const maxRemembered = 100_000

// Inferrer judges, for the masking policy, the tables a masking file does
// not name (unknown_table_behavior: llm_inference): the generator's
// detectors on each table's columns and a small sample, and the model on
// the columns they leave at low confidence (shown the shapes of the values
// only, unless Model.Samples). What it finds stays in the proxy's memory,
// never in a log. A table's verdict is kept while its columns (names and
// types) stay the same; a table it could not judge (the sample failed, the
// model gave no answer) is refused until a later catalog read judges it.
type Inferrer struct {
	// Model is asked about the low findings (required).
	Model *Model
	// SampleRows is the most rows read per table (DefaultInferRows when 0).
	SampleRows int
	// Parallel is how many tables are judged at once (default 4).
	Parallel int

	mu    sync.Mutex
	known map[inferKey][]masking.Column
}

// inferKey is one table of one database of one server, with its columns'
// names and types.
type inferKey struct {
	backend, database, schema, name, columns string
}

// Infer implements masking.Inferrer.
func (in *Inferrer) Infer(ctx context.Context, q masking.Querier, backend, database string, cfg *masking.Config) (*masking.Inferred, error) {
	schemas, err := queryStrings(ctx, q, schemasQuery)
	if err != nil {
		return nil, fmt.Errorf("reading the schemas: %w", err)
	}
	tables, err := listTables(ctx, q, schemas)
	if err != nil {
		return nil, err
	}
	out := &masking.Inferred{Undecided: map[[2]string]string{}}
	type job struct {
		tr  *tableRow
		key inferKey
	}
	var jobs []job
	for i := range tables {
		tr := &tables[i]
		if cfg.Table(tr.t.Schema, tr.t.Name) != nil {
			continue
		}
		out.Judged++
		key := inferKey{backend, database, tr.t.Schema, tr.t.Name, signature(tr.columns)}
		in.mu.Lock()
		cols, ok := in.known[key]
		in.mu.Unlock()
		if ok {
			out.Add(tr.t.Schema, tr.t.Name, cols)
			continue
		}
		jobs = append(jobs, job{tr, key})
	}
	parallel := in.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	rows := in.SampleRows
	if rows <= 0 {
		rows = DefaultInferRows
	}
	hmac := cfg.HMACKey != nil
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		fail error
		sem  = make(chan struct{}, parallel)
	)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var m *Model
			if in.Model != nil {
				cp := *in.Model
				cp.asked = 0
				m = &cp
			}
			err := sampleTable(ctx, q, j.tr, Options{SampleRows: max(rows, 2), HMAC: hmac, Model: m})
			mu.Lock()
			defer mu.Unlock()
			t := &j.tr.t
			switch {
			case err != nil:
				// The connection failed: the whole read fails, and is tried
				// again with the next statement.
				if fail == nil {
					fail = fmt.Errorf("judging %s.%s: %w", t.Schema, t.Name, err)
				}
				return
			case t.Skipped != "":
				out.Undecided[[2]string{t.Schema, t.Name}] = t.Skipped
				return
			}
			var cols []masking.Column
			for _, f := range t.Findings {
				if f.unanswered != "" {
					out.Undecided[[2]string{t.Schema, t.Name}] = f.unanswered
					return
				}
				if f.Masked() {
					cols = append(cols, masking.Column{Name: f.Column.Name, Mask: f.Mask, Visible: f.Visible})
				}
			}
			out.Add(t.Schema, t.Name, cols)
			in.mu.Lock()
			if in.known == nil || len(in.known) >= maxRemembered {
				in.known = map[inferKey][]masking.Column{}
			}
			in.known[j.key] = cols
			in.mu.Unlock()
		}()
	}
	wg.Wait()
	if fail != nil {
		return nil, fail
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// signature names a table's columns and their types, so that a verdict is
// not kept across an ALTER TABLE.
func signature(cols []Column) string {
	h := sha256.New()
	for _, c := range cols {
		fmt.Fprintf(h, "%s\x00%s\x00", c.Name, c.Type)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
