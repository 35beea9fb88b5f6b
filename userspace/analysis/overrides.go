package analysis

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// Overrides are an operator's decisions that win over the analysis, read
// from a YAML file (ANALYSIS_OVERRIDES_PATH):
//
//	overrides:
//	  - fingerprint: 0123456789abcdef   # as in query_issues.fingerprint or `pgproxy analyze`
//	    action: allow                   # allow | block
//	    database: shop                  # optional: this database only
//	    reason: nightly report, runs off-peak
//	  - sql: SELECT * FROM orders WHERE note = 'x'   # fingerprinted when the file is read
//	    action: block
//
// The proxy re-reads the file when it changes (file events: filewatch)
// and on SIGHUP. A file that does not parse keeps the previous overrides
// in force; the error names the line.
type Overrides struct {
	path   string
	parser *sqlparse.Parser
	cur    atomic.Pointer[overrideSet]
	// epoch counts the sets put in force (Epoch).
	epoch atomic.Uint64

	mu      sync.Mutex
	modTime time.Time
	size    int64
	loaded  []byte // the content in force
}

// OverrideAction is what an override does.
type OverrideAction string

// Override actions.
const (
	Allow OverrideAction = "allow"
	Block OverrideAction = "block"
)

type overrideFile struct {
	Overrides []overrideEntry `yaml:"overrides"`
}

type overrideEntry struct {
	Fingerprint string         `yaml:"fingerprint"`
	SQL         string         `yaml:"sql"`
	Action      OverrideAction `yaml:"action"`
	Database    string         `yaml:"database"`
	Reason      string         `yaml:"reason"`
}

// overrideSet is one loaded file, keyed by fingerprint.
type overrideSet struct {
	byFingerprint map[string][]overrideEntry
}

// LoadOverrides reads the file at path; an error (unreadable, not YAML, a
// bad entry) names the line.
func LoadOverrides(path string, parser *sqlparse.Parser) (*Overrides, error) {
	o := &Overrides{path: path, parser: parser}
	if _, err := o.Reload(); err != nil {
		return nil, err
	}
	return o, nil
}

// Lookup returns the override for a statement shape in a database: one
// naming the database wins over one for every database.
func (o *Overrides) Lookup(database, fingerprint string) (Decision, bool) {
	if o == nil {
		return Decision{}, false
	}
	set := o.cur.Load()
	if set == nil {
		return Decision{}, false
	}
	var found *overrideEntry
	for i, e := range set.byFingerprint[fingerprint] {
		if e.Database == database {
			found = &set.byFingerprint[fingerprint][i]
			break
		}
		if e.Database == "" && found == nil {
			found = &set.byFingerprint[fingerprint][i]
		}
	}
	if found == nil {
		return Decision{}, false
	}
	d := Decision{Verdict: Efficient, Source: SourceOverride, Origin: SourceOverride, Check: "override"}
	reason := found.Reason
	if reason == "" {
		reason = "set by an operator in " + o.path
	}
	if found.Action == Block {
		d.Verdict, d.Reason = Inefficient, "blocked by an override: "+reason
	} else {
		d.Reason = "allowed by an override: " + reason
	}
	return d, true
}

// Len returns the number of overrides in force.
func (o *Overrides) Len() int {
	if o == nil || o.cur.Load() == nil {
		return 0
	}
	n := 0
	for _, es := range o.cur.Load().byFingerprint {
		n += len(es)
	}
	return n
}

// Epoch changes whenever another set of overrides is put in force.
func (o *Overrides) Epoch() uint64 {
	if o == nil {
		return 0
	}
	return o.epoch.Load()
}

// Reload reads the file again. It reports whether the overrides changed;
// on error the previous ones stay in force.
func (o *Overrides) Reload() (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	data, err := os.ReadFile(o.path)
	if err != nil {
		return false, fmt.Errorf("%s: %w", o.path, err)
	}
	if o.cur.Load() != nil && bytes.Equal(data, o.loaded) {
		return false, nil
	}
	set, err := parseOverrides(o.path, data, o.parser)
	if err != nil {
		return false, err
	}
	if fi, err := os.Stat(o.path); err == nil {
		o.modTime, o.size = fi.ModTime(), fi.Size()
	}
	o.loaded = data
	o.cur.Store(set)
	o.epoch.Add(1)
	return true, nil
}

// Changed reports whether the file looks different from the one loaded
// (modification time or size), without reading it.
func (o *Overrides) Changed() bool {
	fi, err := os.Stat(o.path)
	if err != nil {
		return true // gone or unreadable: Reload reports it
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return !fi.ModTime().Equal(o.modTime) || fi.Size() != o.size
}

// parseOverrides decodes and checks the file; errors name the line.
func parseOverrides(path string, data []byte, p *sqlparse.Parser) (*overrideSet, error) {
	var f overrideFile
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	lines := entryLines(data)
	set := &overrideSet{byFingerprint: map[string][]overrideEntry{}}
	var errs []error
	for i, e := range f.Overrides {
		at := fmt.Sprintf("%s: line %d", path, lineOf(lines, i))
		switch e.Action {
		case Allow, Block:
		default:
			errs = append(errs, fmt.Errorf("%s: action %q must be allow or block", at, e.Action))
			continue
		}
		switch {
		case e.Fingerprint != "" && e.SQL != "":
			errs = append(errs, fmt.Errorf("%s: give fingerprint or sql, not both", at))
			continue
		case e.SQL != "":
			parsed := p.Parse(e.SQL)
			if parsed.Err != nil {
				errs = append(errs, fmt.Errorf("%s: sql does not parse: %v", at, parsed.Err))
				continue
			}
			e.Fingerprint = parsed.Fingerprint()
		case e.Fingerprint == "":
			errs = append(errs, fmt.Errorf("%s: fingerprint or sql is required", at))
			continue
		}
		e.Fingerprint = strings.ToLower(strings.TrimSpace(e.Fingerprint))
		set.byFingerprint[e.Fingerprint] = append(set.byFingerprint[e.Fingerprint], e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

// entryLines returns the line of each element of the overrides list.
func entryLines(data []byte) []int {
	file, err := parser.ParseBytes(data, 0)
	if err != nil || len(file.Docs) == 0 {
		return nil
	}
	m, ok := file.Docs[0].Body.(*ast.MappingNode)
	if !ok {
		return nil
	}
	for _, kv := range m.Values {
		if kv.Key.String() != "overrides" {
			continue
		}
		seq, ok := kv.Value.(*ast.SequenceNode)
		if !ok {
			return nil
		}
		var lines []int
		for _, v := range seq.Values {
			lines = append(lines, v.GetToken().Position.Line)
		}
		return lines
	}
	return nil
}

func lineOf(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}
