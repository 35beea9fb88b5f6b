package masking

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

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
}

// RelColumn is one column of a masked relation.
type RelColumn struct {
	Name string
	Num  int16
	Type Type
	// Mask is nil for a column shown in clear.
	Mask *Column
}

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
	// known are the names of every function and procedure of the database
	// (nil: not read), so that one the catalog has not seen (created in an
	// open transaction) is refused rather than trusted.
	known map[string]bool
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
SELECT p.proname::text, l.lanname::text, coalesce(p.prosrc, ''),
	EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass
		AND d.objid = p.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY($1::oid[]))
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`

// foreignQuery lists foreign tables with their options (a foreign table
// can point back at a masked table through a loopback server).
const foreignQuery = `
SELECT c.oid::int8, n.nspname::text, c.relname::text, coalesce(pg_catalog.array_to_string(ft.ftoptions, ','), '')
FROM pg_catalog.pg_foreign_table ft
JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`

// LoadCatalog reads what the rewriter needs from a database's catalogs.
func LoadCatalog(ctx context.Context, q Querier, cfg *Config) (*Catalog, error) {
	c := &Catalog{cfg: cfg, rels: map[[2]string]*Relation{}, byName: map[string][]*Relation{}, byOID: map[uint32]*Relation{},
		views: map[[2]string]*View{}, vName: map[string][]*View{}, funcs: map[string]string{}}
	if err := c.loadRelations(ctx, q); err != nil {
		return nil, fmt.Errorf("reading the masked tables: %w", err)
	}
	oids := make([]uint32, 0, len(c.byOID))
	for oid := range c.byOID {
		oids = append(oids, oid)
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
	if err := c.loadFunctions(ctx, q, oids); err != nil {
		return nil, fmt.Errorf("reading the functions: %w", err)
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

func (c *Catalog) loadFunctions(ctx context.Context, q Querier, oids []uint32) error {
	rows, err := q.Query(ctx, functionsQuery, oids)
	if err != nil {
		return err
	}
	defer rows.Close()
	type fn struct{ name, lang, src string }
	var all []fn
	for rows.Next() {
		var f fn
		var dep bool
		if err := rows.Scan(&f.name, &f.lang, &f.src, &dep); err != nil {
			return err
		}
		if dep {
			c.funcs[f.name] = "it reads a masked table"
			continue
		}
		all = append(all, f)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, f := range all {
		switch f.lang {
		case "sql", "plpgsql":
			if m := dynamicSQL.FindString(f.src); m != "" {
				c.funcs[f.name] = "it runs SQL given as text (" + strings.ToLower(m) + ")"
			}
		case "c", "internal":
			if reason := deniedFunction(f.name); reason != "" {
				c.funcs[f.name] = reason
			}
		default:
			c.funcs[f.name] = "it is written in " + f.lang + ", whose SQL the proxy cannot see"
		}
	}
	// A body that names a masked relation, a view over one or an unsafe
	// function reads masked values; repeat until nothing changes (a
	// function calling such a function).
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
	return nil
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

// ErrNoCatalog is returned when the catalog cannot be read.
var ErrNoCatalog = errors.New("the masking catalog cannot be read")
