package reporter

import (
	"context"
	"fmt"
	"time"
)

// Explanation is the model tier's answer about a statement whose issues
// are already recorded: Explain applies it to the query_issues rows of the
// fingerprint and database detected since Since that no model explained
// yet (their reason, suggestion, verdict, source and model; the evidence
// of rules and planner is kept, prefixed by what they said).
type Explanation struct {
	Fingerprint, Database string
	Since                 time.Time
	Verdict, Reason       string
	Suggestion, Evidence  string
	Source, Model         string
}

// pendingExplanation is an Explanation the writer has not applied yet, and
// how many batches found no row for it.
type pendingExplanation struct {
	e     Explanation
	tries int
}

// maxExplainTries is how many batches an explanation waits for its issue
// rows (the model may answer before the statement's issue is queued).
const maxExplainTries = 5

const explainSQL = `UPDATE ` + Schema + `.query_issues
SET verdict = $3, reason = $4, suggestion = $5, evidence = $6, source = $7, origin = $7, model = $8
WHERE fingerprint = $1 AND database = $2 AND detected_at >= $9 AND model = ''`

// explain applies the pending explanations; those that found no row are
// kept for the next batches, up to maxExplainTries.
func (w *writer) explain() error {
	if len(w.explains) == 0 {
		return nil
	}
	var left []pendingExplanation
	for i, p := range w.explains {
		e := p.e
		ctx, cancel := context.WithTimeout(w.r.hard, w.r.opts.WriteTimeout)
		tag, err := w.conn.Exec(ctx, explainSQL, e.Fingerprint, e.Database, e.Verdict, e.Reason, e.Suggestion,
			e.Evidence, e.Source, e.Model, e.Since)
		cancel()
		switch {
		case err != nil && !isRecordError(err):
			w.explains = append(left, w.explains[i:]...)
			return fmt.Errorf("reporter: explain query_issues: %w", err)
		case err != nil:
			w.fail(&RejectedError{Table: TableIssues, Err: err})
		case tag.RowsAffected() == 0 && p.tries+1 < maxExplainTries:
			p.tries++
			left = append(left, p)
		}
	}
	w.explains = left
	return nil
}
