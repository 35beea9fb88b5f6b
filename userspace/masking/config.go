// Package masking keeps sensitive columns from leaving the proxy in clear.
//
// The file (MASKING_CONFIG_PATH) names tables and, for each, the columns to
// mask and how. The rewriter replaces every reference to a masked table in a
// statement by a subquery that exposes masked expressions under the
// original column names, built from PostgreSQL built-ins only, so that
// predicates, joins, functions, casts, whole-row references, COPY and
// CREATE TABLE AS see masked values too. What it cannot prove safe is
// refused with SQLSTATE 42501. A result hook masks any column the server
// still describes as a masked column (the second wall).
package masking

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// MaskType is how a column is masked.
type MaskType string

// The mask types.
const (
	// Full replaces the value with ***MASKED*** (NULL for a column that is
	// not text).
	Full MaskType = "full"
	// Partial keeps the first visible_chars characters, then ***; a value
	// of visible_chars characters or fewer becomes ***.
	Partial MaskType = "partial"
	// Email keeps the first character of the local part and the domain:
	// j***@example.com; a value without a local part and @ is masked as full.
	Email MaskType = "email"
	// Hash is the lowercase hex SHA-256 of the value's UTF-8 bytes.
	Hash MaskType = "hash"
	// HMAC is the lowercase hex HMAC-SHA-256 of the value with the key of
	// MASKING_HMAC_KEY or MASKING_HMAC_KEY_FILE: unlike Hash it cannot be
	// reversed by hashing a dictionary of likely values.
	HMAC MaskType = "hmac"
	// Null replaces the value with NULL.
	Null MaskType = "null"
)

// FullText is what the full mask shows.
const FullText = "***MASKED***"

// Unknown-table behaviours.
const (
	Passthrough   = "passthrough"
	LLMInference  = "llm_inference"
	maxVisible    = 1000
	maxConfigSize = 16 << 20
)

// Column is one masked column.
type Column struct {
	Name string
	Mask MaskType
	// Visible is params.visible_chars of a partial mask.
	Visible int
	// Line is where the column is in the file.
	Line int
}

// Table is one table with masked columns. Its partitions and inheritance
// children are masked alike.
type Table struct {
	Schema, Name string
	Columns      []Column
	Line         int
}

// Column returns the mask of a column by name.
func (t *Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// Config is one loaded masking file.
type Config struct {
	Path          string
	DefaultSchema string
	// UnknownTable is passthrough or llm_inference.
	UnknownTable string
	// UnmaskedRoles see clear values: token roles, or database users in
	// passthrough sessions.
	UnmaskedRoles map[string]bool
	Tables        []Table
	// HMACKey is the key of hmac masks (nil without one).
	HMACKey []byte
}

// Table returns the configured table of a schema and name.
func (c *Config) Table(schema, name string) *Table {
	for i := range c.Tables {
		if c.Tables[i].Schema == schema && c.Tables[i].Name == name {
			return &c.Tables[i]
		}
	}
	return nil
}

// Unmasked reports whether a session sees clear values: one of its token
// roles, or in a passthrough session (no identity) its database user, is in
// unmasked_roles.
func (c *Config) Unmasked(identity string, roles []string, user string) bool {
	if len(c.UnmaskedRoles) == 0 {
		return false
	}
	if identity != "" {
		for _, r := range roles {
			if c.UnmaskedRoles[r] {
				return true
			}
		}
		return false
	}
	return c.UnmaskedRoles[user]
}

// usesHMAC reports whether a column is masked with the keyed hash.
func (c *Config) usesHMAC() bool {
	for _, t := range c.Tables {
		for _, col := range t.Columns {
			if col.Mask == HMAC {
				return true
			}
		}
	}
	return false
}

type fileFormat struct {
	Version       string      `yaml:"version"`
	DefaultSchema string      `yaml:"default_schema"`
	UnknownTable  string      `yaml:"unknown_table_behavior"`
	UnmaskedRoles []string    `yaml:"unmasked_roles"`
	Tables        []fileTable `yaml:"tables"`
}

type fileTable struct {
	Schema  string       `yaml:"schema"`
	Table   string       `yaml:"table"`
	Columns []fileColumn `yaml:"columns"`
}

type fileColumn struct {
	Name     string         `yaml:"name"`
	MaskType string         `yaml:"mask_type"`
	Params   map[string]any `yaml:"params"`
}

// Load reads and checks the masking file; hmacKey is the keyed hash's key
// (nil when none is configured). Errors name the file and line.
func Load(path string, hmacKey []byte) (*Config, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxConfigSize {
		return nil, fmt.Errorf("%s: %d bytes is larger than the %d allowed", path, fi.Size(), maxConfigSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, hmacKey)
}

// Parse checks a masking file's text; path names it in errors.
func Parse(path string, data []byte, hmacKey []byte) (*Config, error) {
	var f fileFormat
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: the file is empty (write at least version: \"1.0\" and tables: [])", path)
	}
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimSpace(yaml.FormatError(err, false, false)))
	}
	lines := lineFinder(data)
	var errs []error
	fail := func(line int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: line %d: %s", path, line, fmt.Sprintf(format, args...)))
	}
	c := &Config{Path: path, DefaultSchema: f.DefaultSchema, UnknownTable: f.UnknownTable, UnmaskedRoles: map[string]bool{}, HMACKey: hmacKey}
	switch f.Version {
	case "1.0", "1":
	case "":
		fail(lines("$.version", 1), "version is required (\"1.0\")")
	default:
		fail(lines("$.version", 1), "version %q is not supported (\"1.0\")", f.Version)
	}
	if c.DefaultSchema == "" {
		c.DefaultSchema = "public"
	}
	switch c.UnknownTable {
	case "":
		c.UnknownTable = Passthrough
	case Passthrough:
	case LLMInference:
		// The tables the file does not name are judged when a database's
		// catalog is read (Policy.Infer); the proxy refuses to start
		// without a language model for it.
	default:
		fail(lines("$.unknown_table_behavior", 1), "unknown_table_behavior %q must be passthrough or llm_inference", c.UnknownTable)
	}
	for i, r := range f.UnmaskedRoles {
		if strings.TrimSpace(r) == "" {
			fail(lines(fmt.Sprintf("$.unmasked_roles[%d]", i), 1), "an empty role")
			continue
		}
		c.UnmaskedRoles[r] = true
	}
	seen := map[string]int{}
	for i, ft := range f.Tables {
		at := fmt.Sprintf("$.tables[%d]", i)
		line := lines(at, 1)
		t := Table{Schema: ft.Schema, Name: ft.Table, Line: line}
		if t.Schema == "" {
			t.Schema = c.DefaultSchema
		}
		if t.Name == "" {
			fail(line, "table is required")
			continue
		}
		key := t.Schema + "." + t.Name
		if prev, dup := seen[key]; dup {
			fail(line, "table %s is listed twice (first at line %d)", key, prev)
			continue
		}
		seen[key] = line
		cols := map[string]bool{}
		for j, fc := range ft.Columns {
			cat := fmt.Sprintf("%s.columns[%d]", at, j)
			cl := lines(cat, line)
			col := Column{Name: fc.Name, Mask: MaskType(fc.MaskType), Line: cl}
			if col.Name == "" {
				fail(cl, "column name is required")
				continue
			}
			if cols[col.Name] {
				fail(cl, "column %s.%s is listed twice", key, col.Name)
				continue
			}
			cols[col.Name] = true
			if err := checkMask(&col, fc.Params, hmacKey); err != nil {
				fail(cl, "column %s.%s: %v", key, col.Name, err)
				continue
			}
			t.Columns = append(t.Columns, col)
		}
		if len(ft.Columns) == 0 {
			fail(line, "table %s has no columns to mask", key)
		}
		c.Tables = append(c.Tables, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.SliceStable(c.Tables, func(i, j int) bool { return c.Tables[i].Line < c.Tables[j].Line })
	return c, nil
}

// checkMask checks a column's mask type and parameters.
func checkMask(col *Column, params map[string]any, hmacKey []byte) error {
	allowed := map[string]bool{}
	switch col.Mask {
	case Full, Email, Hash, Null:
	case HMAC:
		if len(hmacKey) == 0 {
			return errors.New("mask_type hmac needs a key: set MASKING_HMAC_KEY or MASKING_HMAC_KEY_FILE")
		}
	case Partial:
		allowed["visible_chars"] = true
		v, ok := params["visible_chars"]
		if !ok {
			return errors.New("mask_type partial needs params.visible_chars (the characters shown before ***)")
		}
		n, ok := asInt(v)
		if !ok || n < 0 || n > maxVisible {
			return fmt.Errorf("params.visible_chars must be a whole number from 0 to %d", maxVisible)
		}
		col.Visible = n
	case "":
		return errors.New("mask_type is required (full, partial, email, hash, hmac or null)")
	default:
		return fmt.Errorf("mask_type %q is not one of full, partial, email, hash, hmac, null", col.Mask)
	}
	for k := range params {
		if !allowed[k] {
			return fmt.Errorf("params.%s does not apply to mask_type %s", k, col.Mask)
		}
	}
	return nil
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case uint64:
		if n > 1<<31 {
			return 0, false
		}
		return int(n), true
	case int64:
		return int(n), n >= -1<<31 && n <= 1<<31
	case int:
		return n, true
	case float64:
		if n != float64(int(n)) {
			return 0, false
		}
		return int(n), true
	}
	return 0, false
}

// lineFinder returns a function giving the line of a YAML path in data, or
// def when it cannot be found.
func lineFinder(data []byte) func(path string, def int) int {
	return func(p string, def int) int {
		path, err := yaml.PathString(p)
		if err != nil {
			return def
		}
		node, err := path.ReadNode(bytes.NewReader(data))
		if err != nil || node == nil || node.GetToken() == nil {
			return def
		}
		return node.GetToken().Position.Line
	}
}
