package masking

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Querier runs the catalog queries (a pgxpool.Pool or a pgx.Conn, logged in
// as the proxy's own account).
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Relation is a masked table (configured, or a partition or inheritance
// child of one) as the catalog describes it.
type Relation struct {
	OID          uint32
	Schema, Name string
	Kind         byte
	// Columns are all its live columns in attribute order.
	Columns []RelColumn
	// Config is the configured table whose masks apply (itself or the
	// ancestor it descends from).
	Config *Table

	uniqueMasked bool
	// safeConstraints are the unique and exclusion constraints that cover
	// no masked column, expression or predicate: ON CONFLICT ON CONSTRAINT
	// may name them.
	safeConstraints map[string]bool
}

// RelColumn is one column of a masked relation.
type RelColumn struct {
	Name string
	Num  int16
	Type Type
	// Mask is nil for a column shown in clear.
	Mask *Column
}

// UniqueMasked reports whether a unique index or exclusion constraint of
// the relation covers a masked column (or an expression or a predicate,
// which may): a conflict then tells whether a value exists.
func (r *Relation) UniqueMasked() bool { return r.uniqueMasked }

// SafeConstraint reports whether name is a unique or exclusion constraint
// of the relation that covers no masked column, expression or predicate (a
// constraint the catalog does not know is not safe).
func (r *Relation) SafeConstraint(name string) bool { return r.safeConstraints[name] }

// Masked reports whether the relation masks the named column.
func (r *Relation) Masked(name string) bool {
	for i := range r.Columns {
		if r.Columns[i].Name == name {
			return r.Columns[i].Mask != nil
		}
	}
	return false
}

// View is a view, materialized view or table with rules whose definition
// reads a masked relation (directly or through another such view).
type View struct {
	OID          uint32
	Schema, Name string
	Kind         byte // 'v' view, 'm' materialized view, other: a table with rules
	// Def is the view's query (pg_get_viewdef), for views.
	Def string
}

// Catalog is what the rewriter knows about one database: the masked
// relations, the views over them and the functions that can read them.
type Catalog struct {
	cfg *Config
	// relations by schema and name, and by name alone (for unqualified
	// references).
	rels   map[[2]string]*Relation
	byName map[string][]*Relation
	byOID  map[uint32]*Relation
	views  map[[2]string]*View
	vName  map[string][]*View
	// funcs are user functions that read masked relations or run SQL given
	// as text, by name, with the reason.
	funcs map[string]string
	// refused are relations that are neither masked nor views over masked
	// tables but whose reading (read) or writing (write) runs an unsafe
	// function: a row security policy, a trigger, a default or a check
	// constraint calling one. By schema and name, and by name alone.
	refused map[[2]string]*refusedRel
	rfName  map[string][]*refusedRel
	// known are the names of every function and procedure of the database
	// (nil: not read), so that one the catalog has not seen (created in an
	// open transaction) is refused rather than trusted.
	known map[string]bool
	// subqueries are the parsed masking subqueries by *Relation (see
	// subqueryTemplate).
	subqueries sync.Map
	// seen are the names of every relation of the database (by schema and
	// name, and by name alone) and checked the references looked for in
	// a read and not found (a session's temporary table, a typing
	// mistake), under llm_inference only (nil otherwise).
	seen     map[[2]string]bool
	seenName map[string]bool
	checked  map[[2]string]bool
	// Problems are masks that cannot produce their column's type, and
	// configured tables or columns that do not exist.
	Problems []error
}

// Config returns the configuration the catalog was loaded for.
func (c *Catalog) Config() *Config { return c.cfg }

// Relation returns the masked relation a reference names: schema may be ""
// (unqualified: the masked relation of that name, preferring the default
// schema).
func (c *Catalog) Relation(schema, name string) *Relation {
	if schema != "" {
		return c.rels[[2]string{schema, name}]
	}
	rs := c.byName[name]
	if len(rs) == 0 {
		return nil
	}
	for _, r := range rs {
		if r.Schema == c.cfg.DefaultSchema {
			return r
		}
	}
	return rs[0]
}

// ambiguous reports whether an unqualified name may mean masked relations
// (or views over them) that are masked differently: the same name in
// several schemas, with other columns or masks. Which one the session
// reads depends on its search_path, which the proxy does not know.
func (c *Catalog) ambiguous(name string) bool {
	rs, vs := c.byName[name], c.vName[name]
	if len(rs)+len(vs) < 2 {
		return false
	}
	if len(vs) > 0 {
		return true
	}
	sig := func(r *Relation) string {
		var b strings.Builder
		for _, col := range r.Columns {
			fmt.Fprintf(&b, "%s %s", col.Name, col.Type.SQL)
			if col.Mask != nil {
				fmt.Fprintf(&b, " %s %d", col.Mask.Mask, col.Mask.Visible)
			}
			b.WriteByte(';')
		}
		return b.String()
	}
	first := sig(rs[0])
	for _, r := range rs[1:] {
		if sig(r) != first {
			return true
		}
	}
	return false
}

// holdsMasked reports whether a schema holds a masked relation or a view
// over one (renaming it would unmask them: the file names the schema).
func (c *Catalog) holdsMasked(schema string) bool {
	for k := range c.rels {
		if k[0] == schema {
			return true
		}
	}
	for k := range c.views {
		if k[0] == schema {
			return true
		}
	}
	return false
}

// RelationByOID returns the masked relation with a table OID (the second
// wall's lookup), or nil.
func (c *Catalog) RelationByOID(oid uint32) *Relation { return c.byOID[oid] }

// View returns the view over masked relations a reference names.
func (c *Catalog) View(schema, name string) *View {
	if schema != "" {
		return c.views[[2]string{schema, name}]
	}
	vs := c.vName[name]
	if len(vs) == 0 {
		return nil
	}
	for _, v := range vs {
		if v.Schema == c.cfg.DefaultSchema {
			return v
		}
	}
	return vs[0]
}

// UnsafeFunction returns why a user function must not run, or "".
func (c *Catalog) UnsafeFunction(name string) string { return c.funcs[name] }

// refusedRel is a relation whose reading or writing runs an unsafe
// function.
type refusedRel struct {
	Schema, Name string
	read         string // the reason ("" for allowed)
	// write are the reasons by statement kind (Insert, Update, Delete,
	// Truncate).
	write map[int16]string
	// undecided: refused because its masks could not be inferred yet
	// (llm_inference), not for what it runs.
	undecided bool
}

// The kinds of write, as pg_trigger.tgtype's bits name them.
const (
	Insert   int16 = 4
	Delete   int16 = 8
	Update   int16 = 16
	Truncate int16 = 32
	anyWrite       = Insert | Delete | Update | Truncate
)

// refusal returns the relation a reference names among the refused ones
// (an unqualified name matches any schema: the proxy cannot know the
// session's search_path), or nil.
func (c *Catalog) refusal(schema, name string) *refusedRel {
	if schema != "" {
		return c.refused[[2]string{schema, name}]
	}
	if rs := c.rfName[name]; len(rs) > 0 {
		return rs[0]
	}
	return nil
}

// ReadRefused returns why reading a relation is refused (a row security
// policy of it calls an unsafe function), or "".
func (c *Catalog) ReadRefused(schema, name string) string {
	if r := c.refusal(schema, name); r != nil {
		return r.read
	}
	return ""
}

// WriteRefused returns why a write of the kinds ops (Insert, Update...;
// several for MERGE) to a relation is refused (a trigger, a default, a
// check constraint or a policy of it calls an unsafe function), or "".
func (c *Catalog) WriteRefused(schema, name string, ops int16) string {
	r := c.refusal(schema, name)
	if r == nil {
		return ""
	}
	for _, op := range []int16{Insert, Update, Delete, Truncate} {
		if ops&op != 0 && r.write[op] != "" {
			return r.write[op]
		}
	}
	return ""
}

// refuseRel notes that reading (read != "") or the writes ops of a
// relation run an unsafe function.
func (c *Catalog) refuseRel(schema, name string, read string, ops int16, why string) {
	key := [2]string{schema, name}
	r := c.refused[key]
	if r == nil {
		r = &refusedRel{Schema: schema, Name: name, write: map[int16]string{}}
		c.refused[key] = r
		c.rfName[name] = append(c.rfName[name], r)
	}
	if r.read == "" {
		r.read = read
	}
	for _, op := range []int16{Insert, Update, Delete, Truncate} {
		if ops&op != 0 && r.write[op] == "" {
			r.write[op] = why
		}
	}
}

// Names returns every relation and function name the rewriter must look at
// (masked relations, views over them, unsafe functions).
func (c *Catalog) names() map[string]bool {
	n := map[string]bool{}
	for k := range c.byName {
		n[k] = true
	}
	for k := range c.vName {
		n[k] = true
	}
	for k := range c.funcs {
		n[k] = true
	}
	return n
}

const relationsQuery = `
WITH RECURSIVE conf(schema, name) AS (
	SELECT * FROM unnest($1::text[], $2::text[])
), tree(oid, root) AS (
	SELECT c.oid, c.oid FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	JOIN conf ON conf.schema = n.nspname AND conf.name = c.relname
	UNION
	SELECT i.inhrelid, tree.root FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid
)
SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, rn.nspname::text, rc.relname::text,
	a.attnum, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory::text
FROM tree
JOIN pg_catalog.pg_class c ON c.oid = tree.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class rc ON rc.oid = tree.root
JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
ORDER BY c.oid, a.attnum`

// viewsQuery finds the views, materialized views and rules that read the
// relations $1, and those that read them, at any depth.
const viewsQuery = `
WITH RECURSIVE dep(oid) AS (
	SELECT r.ev_class FROM pg_catalog.pg_depend d
	JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
	WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY($1::oid[]) AND r.ev_class <> d.refobjid
	UNION
	SELECT r.ev_class FROM pg_catalog.pg_depend d
	JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
	JOIN dep ON d.refobjid = dep.oid
	WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND r.ev_class <> d.refobjid
)
SELECT DISTINCT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text,
	CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) ELSE '' END
FROM dep JOIN pg_catalog.pg_class c ON c.oid = dep.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`

// functionsQuery lists the functions and procedures outside the system
// schemas with their language and body, and whether pg_depend records that
// they read one of the relations $1 (SQL functions with BEGIN ATOMIC).
const functionsQuery = `
SELECT p.oid::int8, p.proname::text, l.lanname::text, coalesce(p.prosrc, ''),
	EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
		AND d.objid = p.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY($1::oid[]))
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`

// uniqueQuery lists the unique indexes and exclusion constraints of the
// relations $1: their columns, whether they have expressions or a
// predicate, and the name of the constraint the index backs (empty when none).
const uniqueQuery = `
SELECT i.indrelid::int8, i.indkey::int2[], i.indexprs IS NOT NULL OR i.indpred IS NOT NULL,
	coalesce((SELECT con.conname::text FROM pg_catalog.pg_constraint con
		WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')), '')
FROM pg_catalog.pg_index i
WHERE (i.indisunique OR i.indisexclusion) AND i.indrelid = ANY($1::oid[])`

// dependentsQuery finds what calls the functions $1 on its own: views and
// rules, triggers (their function or WHEN clause), column defaults, check
// constraints and row security policies, with the relation each belongs to.
const dependentsQuery = `
SELECT DISTINCT x.kind, x.events, c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text,
	CASE WHEN x.kind = 'rule' AND c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) ELSE '' END,
	p.proname::text
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid
CROSS JOIN LATERAL (
	SELECT 'rule'::text AS kind, r.ev_class AS rel, 60::int2 AS events FROM pg_catalog.pg_rewrite r
		WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.oid = d.objid
	UNION ALL SELECT 'trigger', t.tgrelid, t.tgtype FROM pg_catalog.pg_trigger t
		WHERE d.classid = 'pg_catalog.pg_trigger'::regclass AND t.oid = d.objid
	UNION ALL SELECT 'default', a.adrelid, 20::int2 FROM pg_catalog.pg_attrdef a
		WHERE d.classid = 'pg_catalog.pg_attrdef'::regclass AND a.oid = d.objid
	UNION ALL SELECT 'constraint', k.conrelid, 20::int2 FROM pg_catalog.pg_constraint k
		WHERE d.classid = 'pg_catalog.pg_constraint'::regclass AND k.oid = d.objid AND k.conrelid <> 0
	UNION ALL SELECT 'policy', o.polrelid, 60::int2 FROM pg_catalog.pg_policy o
		WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND o.oid = d.objid
) x
JOIN pg_catalog.pg_class c ON c.oid = x.rel
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = ANY($1::oid[])`

// foreignQuery lists foreign tables with their options (a foreign table
// can point back at a masked table through a loopback server).
const foreignQuery = `
SELECT c.oid::int8, n.nspname::text, c.relname::text, coalesce(pg_catalog.array_to_string(ft.ftoptions, ','), '')
FROM pg_catalog.pg_foreign_table ft
JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`

// LoadCatalog reads what the rewriter needs from a database's catalogs.
func LoadCatalog(ctx context.Context, q Querier, cfg *Config) (*Catalog, error) {
	c := newCatalog(cfg)
	if err := c.loadRelations(ctx, q); err != nil {
		return nil, fmt.Errorf("reading the masked tables: %w", err)
	}
	oids := make([]uint32, 0, len(c.byOID))
	for oid := range c.byOID {
		oids = append(oids, oid)
	}
	if err := c.loadUnique(ctx, q, oids); err != nil {
		return nil, fmt.Errorf("reading the unique indexes of masked tables: %w", err)
	}
	if err := c.loadViews(ctx, q, oids); err != nil {
		return nil, fmt.Errorf("reading the views over masked tables: %w", err)
	}
	if err := c.loadForeign(ctx, q); err != nil {
		return nil, fmt.Errorf("reading the foreign tables: %w", err)
	}
	for _, v := range c.views {
		oids = append(oids, v.OID)
	}
	fns, err := c.loadFunctions(ctx, q, oids)
	if err != nil {
		return nil, fmt.Errorf("reading the functions: %w", err)
	}
	// What calls an unsafe function (a view, a trigger, a default, a
	// policy) reads masked values too; a view found so makes the views
	// over it and the functions naming it unsafe in turn.
	for range maxViewDepth {
		added, err := c.loadDependents(ctx, q, fns)
		if err != nil {
			return nil, fmt.Errorf("reading what calls functions over masked tables: %w", err)
		}
		if len(added) > 0 {
			if err := c.loadViews(ctx, q, added); err != nil {
				return nil, fmt.Errorf("reading the views over masked tables: %w", err)
			}
		}
		before := len(c.funcs)
		c.markByBody(fns)
		if len(added) == 0 && len(c.funcs) == before {
			break
		}
	}
	if err := c.loadKnown(ctx, q); err != nil {
		return nil, fmt.Errorf("reading the function names: %w", err)
	}
	return c, nil
}

func (c *Catalog) loadRelations(ctx context.Context, q Querier) error {
	var schemas, names []string
	for _, t := range c.cfg.Tables {
		schemas, names = append(schemas, t.Schema), append(names, t.Name)
	}
	rows, err := q.Query(ctx, relationsQuery, schemas, names)
	if err != nil {
		return err
	}
	defer rows.Close()
	var cur *Relation
	for rows.Next() {
		var oid int64
		var schema, name, kind, rootSchema, rootName, attname, typ, cat string
		var attnum int16
		if err := rows.Scan(&oid, &schema, &name, &kind, &rootSchema, &rootName, &attnum, &attname, &typ, &cat); err != nil {
			return err
		}
		if cur == nil || cur.OID != uint32(oid) {
			cfg := c.cfg.Table(rootSchema, rootName)
			cur = &Relation{OID: uint32(oid), Schema: schema, Name: name, Kind: kind[0], Config: cfg}
			c.rels[[2]string{schema, name}] = cur
			c.byName[name] = append(c.byName[name], cur)
			c.byOID[cur.OID] = cur
		}
		col := RelColumn{Name: attname, Num: attnum, Type: Type{SQL: typ, Text: cat == "S"}}
		if cur.Config != nil {
			if m, ok := cur.Config.Column(attname); ok {
				m := m
				col.Mask = &m
				if err := checkType(m, col.Type); err != nil {
					c.Problems = append(c.Problems, fmt.Errorf("%s: line %d: column %s.%s.%s: %v", c.cfg.Path, m.Line, schema, name, attname, err))
				}
			}
		}
		cur.Columns = append(cur.Columns, col)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range c.cfg.Tables {
		r := c.rels[[2]string{t.Schema, t.Name}]
		if r == nil {
			c.Problems = append(c.Problems, fmt.Errorf("%s: line %d: table %s.%s does not exist in this database", c.cfg.Path, t.Line, t.Schema, t.Name))
			continue
		}
		for _, col := range t.Columns {
			found := false
			for _, rc := range r.Columns {
				found = found || rc.Name == col.Name
			}
			if !found {
				c.Problems = append(c.Problems, fmt.Errorf("%s: line %d: table %s.%s has no column %s", c.cfg.Path, col.Line, t.Schema, t.Name, col.Name))
			}
		}
	}
	return nil
}

func newCatalog(cfg *Config) *Catalog {
	return &Catalog{cfg: cfg, rels: map[[2]string]*Relation{}, byName: map[string][]*Relation{}, byOID: map[uint32]*Relation{},
		views: map[[2]string]*View{}, vName: map[string][]*View{}, funcs: map[string]string{},
		refused: map[[2]string]*refusedRel{}, rfName: map[string][]*refusedRel{}}
}

func (c *Catalog) loadUnique(ctx context.Context, q Querier, oids []uint32) error {
	rows, err := q.Query(ctx, uniqueQuery, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var oid int64
		var keys []int16
		var exprs bool
		var conname string
		if err := rows.Scan(&oid, &keys, &exprs, &conname); err != nil {
			return err
		}
		rel := c.byOID[uint32(oid)]
		if rel == nil {
			continue
		}
		masked := exprs
		for _, k := range keys {
			for _, col := range rel.Columns {
				masked = masked || (col.Num == k && col.Mask != nil)
			}
		}
		rel.uniqueMasked = rel.uniqueMasked || masked
		if conname != "" && !masked {
			if rel.safeConstraints == nil {
				rel.safeConstraints = map[string]bool{}
			}
			rel.safeConstraints[conname] = true
		}
	}
	return rows.Err()
}

// loadDependents adds what calls an unsafe function: views and tables with
// rules (as views over masked tables), relations whose policies, triggers,
// defaults or check constraints call one. It returns the OIDs of the views
// it added.
func (c *Catalog) loadDependents(ctx context.Context, q Querier, fns []function) ([]uint32, error) {
	var unsafe []uint32
	for _, f := range fns {
		if c.funcs[f.name] != "" {
			unsafe = append(unsafe, f.oid)
		}
	}
	if len(unsafe) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, dependentsQuery, unsafe)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var added []uint32
	for rows.Next() {
		var oid int64
		var events int16
		var kind, schema, name, relkind, def, fn string
		if err := rows.Scan(&kind, &events, &oid, &schema, &name, &relkind, &def, &fn); err != nil {
			return nil, err
		}
		if kind == "rule" && c.byOID[uint32(oid)] != nil {
			continue // a masked table with a rule: read masked anyway
		}
		why := fmt.Sprintf("%s of %s.%s calls %s, which reads masked values", map[string]string{
			"rule": "a rule", "trigger": "a trigger", "default": "a column default", "constraint": "a check constraint",
			"policy": "a row security policy"}[kind], schema, name, fn)
		switch kind {
		case "rule":
			if c.views[[2]string{schema, name}] == nil {
				c.addView(&View{OID: uint32(oid), Schema: schema, Name: name, Kind: relkind[0], Def: def})
				added = append(added, uint32(oid))
			}
		case "policy":
			c.refuseRel(schema, name, why, anyWrite, why)
		default:
			c.refuseRel(schema, name, "", events&anyWrite, why)
		}
	}
	return added, rows.Err()
}

func (c *Catalog) loadViews(ctx context.Context, q Querier, oids []uint32) error {
	rows, err := q.Query(ctx, viewsQuery, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var oid int64
		var schema, name, kind, def string
		if err := rows.Scan(&oid, &schema, &name, &kind, &def); err != nil {
			return err
		}
		if c.byOID[uint32(oid)] != nil {
			continue // a masked table with a rule reading another: masked anyway
		}
		c.addView(&View{OID: uint32(oid), Schema: schema, Name: name, Kind: kind[0], Def: def})
	}
	return rows.Err()
}

func (c *Catalog) addView(v *View) {
	c.views[[2]string{v.Schema, v.Name}] = v
	c.vName[v.Name] = append(c.vName[v.Name], v)
}

func (c *Catalog) loadForeign(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, foreignQuery)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var oid int64
		var schema, name, opts string
		if err := rows.Scan(&oid, &schema, &name, &opts); err != nil {
			return err
		}
		remote := name
		for _, o := range strings.Split(opts, ",") {
			if k, v, ok := strings.Cut(o, "="); ok && k == "table_name" {
				remote = v
			}
		}
		if len(c.byName[remote]) > 0 || len(c.vName[remote]) > 0 {
			// It may read a masked table of this very server.
			c.addView(&View{OID: uint32(oid), Schema: schema, Name: name, Kind: 'f'})
		}
	}
	return rows.Err()
}

// dynamicSQL finds, in a function body, what runs SQL given as text.
var dynamicSQL = regexp.MustCompile(`(?i)\b(execute|query_to_xml\w*|table_to_xml\w*|cursor_to_xml\w*|schema_to_xml\w*|database_to_xml\w*|dblink\w*|ts_stat|crosstab\w*)\b`)

// function is a user function as the catalog lists it.
type function struct {
	oid             uint32
	name, lang, src string
}

// unicodeEscapes finds U&"..." identifiers and U&'...' strings in a
// function body: a name written so does not match the masked names.
var unicodeEscapes = regexp.MustCompile(`(?i)\bu&["']`)

func (c *Catalog) loadFunctions(ctx context.Context, q Querier, oids []uint32) ([]function, error) {
	rows, err := q.Query(ctx, functionsQuery, oids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var all []function
	for rows.Next() {
		var f function
		var oid int64
		var dep bool
		if err := rows.Scan(&oid, &f.name, &f.lang, &f.src, &dep); err != nil {
			return nil, err
		}
		f.oid = uint32(oid)
		all = append(all, f)
		if dep {
			c.funcs[f.name] = "it reads a masked table"
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, f := range all {
		if c.funcs[f.name] != "" {
			continue
		}
		if why := unsafeBody(f); why != "" {
			c.funcs[f.name] = why
		}
	}
	c.markByBody(all)
	return all, nil
}

// unsafeBody returns why a function the catalog lists is unsafe to call,
// from its language and body alone, or "".
func unsafeBody(f function) string {
	switch f.lang {
	case "sql", "plpgsql":
		if m := dynamicSQL.FindString(f.src); m != "" {
			return "it runs SQL given as text (" + strings.ToLower(m) + ")"
		}
		if unicodeEscapes.MatchString(f.src) {
			return "its body spells names with U& escapes, which the proxy does not read"
		}
		if m := bodyDenied.FindStringSubmatch(f.src); m != nil {
			return "its body names " + strings.ToLower(m[2]) + ", which masking does not allow in a function body"
		}
		if setNames.MatchString(f.src) {
			return "its body sets client_encoding (SET NAMES), which masking does not allow"
		}
	case "c", "internal":
		return deniedFunction(f.name)
	default:
		return "it is written in " + f.lang + ", whose SQL the proxy cannot see"
	}
	return ""
}

// markByBody marks unsafe the SQL and plpgsql functions whose body names a
// masked relation, a view over one or an unsafe function; it repeats until
// nothing changes (a function calling such a function).
func (c *Catalog) markByBody(all []function) {
	for changed := true; changed; {
		changed = false
		words := c.sensitiveWords()
		for _, f := range all {
			if c.funcs[f.name] != "" || (f.lang != "sql" && f.lang != "plpgsql") {
				continue
			}
			if m := words.FindStringSubmatch(f.src); m != nil {
				c.funcs[f.name] = fmt.Sprintf("its body reads %s, which is masked", strings.ToLower(m[2]))
				changed = true
			}
		}
	}
}

func (c *Catalog) loadKnown(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, "SELECT DISTINCT proname::text FROM pg_catalog.pg_proc")
	if err != nil {
		return err
	}
	defer rows.Close()
	c.known = map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		c.known[name] = true
	}
	return rows.Err()
}

// sensitiveWords matches any masked relation, view over one or unsafe
// function name as a word.
func (c *Catalog) sensitiveWords() *regexp.Regexp {
	var names []string
	for n := range c.names() {
		names = append(names, regexp.QuoteMeta(n))
	}
	if len(names) == 0 {
		return regexp.MustCompile(`\A\b\z.`) // matches nothing
	}
	sort.Strings(names)
	return regexp.MustCompile(`(?i)(^|[^\w$])(` + strings.Join(names, "|") + `)($|[^\w$])`)
}
