package masking

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pgproxy/pgproxy/userspace/sqlparse"
	"github.com/pgproxy/pgproxy/userspace/wire"
)

// maxViewDepth bounds views inlined within views.
const maxViewDepth = 8

// Result is what the rewriter made of one query string.
type Result struct {
	// SQL is the text to run: the rewritten text, or the client's when
	// nothing had to change.
	SQL string
	// Changed is set when SQL differs from the client's text.
	Changed bool
	// Touched is set when the statement reads a masked relation (the
	// second wall then checks its results).
	Touched bool
	// Copy is set when a statement is a COPY (whose rows no result hook
	// sees: the rewrite is the whole guarantee).
	Copy bool
	// DDL is set when a statement may change what the catalog says
	// (functions, views, tables): the catalog is read again after it.
	DDL bool
	// Err is the refusal, when the statement cannot be proven safe.
	Err *wire.Error
	// Unseen are references to relations the catalog has not seen
	// (unknown_table_behavior: llm_inference): the statement is judged
	// again after the catalog is read again.
	Unseen [][2]string
	// Undecided is set when the refusal is of a table whose masks could
	// not be inferred yet: the catalog is read again soon.
	Undecided bool
}

// refusal is a statement the rewriter will not pass.
type refusal struct{ err *wire.Error }

func refuse(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	panic(refusal{wire.Refusal(wire.CodeInsufficientPrivilege, "pgproxy masking: "+msg).
		WithHint("masked columns can be read only through statements the proxy can rewrite; ask an operator for unmasked_roles if you need clear values")})
}

// rewriter rewrites one parse tree in place.
type rewriter struct {
	cat     *Catalog
	res     *Result
	scopes  []map[string]bool // CTE names visible, innermost last
	depth   int               // views being inlined
	ours    map[*pg_query.SelectStmt]bool
	viewing []string
	// requalified are the schema-qualified references without an alias
	// that the FROM items being rewritten replaced by a subquery named
	// after the relation alone.
	requalified []*pg_query.RangeVar
	// inBody is set while a function body being created is checked: a
	// function it calls may be created later (its body is checked then).
	inBody bool
	// version is the parse tree's version (what Deparse asks for).
	version int32
}

// Rewrite rewrites the parse tree of sql (which it changes: pass a tree of
// its own) so that every masked value it reads is masked.
func (c *Catalog) Rewrite(sql string, tree *pg_query.ParseResult) (res Result) {
	res.SQL = sql
	r := &rewriter{cat: c, res: &res, ours: map[*pg_query.SelectStmt]bool{}, version: tree.Version}
	defer func() {
		if p := recover(); p != nil {
			ref, ok := p.(refusal)
			if !ok {
				panic(p)
			}
			res = Result{SQL: sql, Err: ref.err, Touched: true, Undecided: res.Undecided}
		}
	}()
	for _, raw := range tree.Stmts {
		r.statement(raw.Stmt)
	}
	if res.Changed {
		out, err := pg_query.Deparse(tree)
		if err != nil {
			return Result{SQL: sql, Touched: true, Err: wire.Refusal(wire.CodeInsufficientPrivilege,
				"pgproxy masking: the rewritten statement cannot be printed: "+err.Error())}
		}
		res.SQL = out
	}
	return res
}

// statement handles one top-level (or nested utility) statement.
func (r *rewriter) statement(n *pg_query.Node) {
	switch {
	case n.GetSelectStmt() != nil:
		r.selectStmt(n.GetSelectStmt())
	case n.GetInsertStmt() != nil:
		r.insert(n.GetInsertStmt())
	case n.GetUpdateStmt() != nil:
		r.update(n.GetUpdateStmt())
	case n.GetDeleteStmt() != nil:
		r.delete(n.GetDeleteStmt())
	case n.GetMergeStmt() != nil:
		r.merge(n.GetMergeStmt())
	case n.GetCopyStmt() != nil:
		r.copy(n.GetCopyStmt())
	case n.GetExplainStmt() != nil:
		r.explain(n.GetExplainStmt())
	case n.GetCreateTableAsStmt() != nil:
		ct := n.GetCreateTableAsStmt()
		if ct.Objtype == pg_query.ObjectType_OBJECT_MATVIEW && r.cat.cfg.usesHMAC() && r.reads(ct.Query) {
			refuse("a materialized view over a masked table would store the keyed hash's key in its definition")
		}
		r.statement(ct.Query)
		r.res.DDL = true
	case n.GetPrepareStmt() != nil:
		r.statement(n.GetPrepareStmt().Query)
	case n.GetDeclareCursorStmt() != nil:
		r.statement(n.GetDeclareCursorStmt().Query)
	case n.GetViewStmt() != nil:
		v := n.GetViewStmt()
		r.checkTarget(v.View, "CREATE VIEW over")
		if r.cat.cfg.usesHMAC() && r.reads(v.Query) {
			refuse("a view over a masked table would store the keyed hash's key in its definition")
		}
		r.statement(v.Query)
		r.res.DDL = true
	case n.GetRuleStmt() != nil:
		rs := n.GetRuleStmt()
		r.checkTarget(rs.Relation, "CREATE RULE on")
		for _, a := range rs.Actions {
			if r.reads(a) {
				refuse("a rule that reads a masked table would copy its values where they are not masked")
			}
		}
		r.walk(n)
		r.res.DDL = true
	case n.GetDoStmt() != nil:
		refuse("DO blocks run SQL the proxy cannot see")
	case n.GetCallStmt() != nil:
		r.walk(n)
	case n.GetCreateExtensionStmt() != nil:
		refuse("CREATE EXTENSION is not allowed (extensions can read pages, files or other databases)")
	case n.GetCreateForeignServerStmt() != nil, n.GetCreateForeignTableStmt() != nil, n.GetImportForeignSchemaStmt() != nil,
		n.GetCreateUserMappingStmt() != nil, n.GetAlterForeignServerStmt() != nil, n.GetCreateFdwStmt() != nil,
		n.GetAlterUserMappingStmt() != nil, n.GetAlterFdwStmt() != nil:
		refuse("foreign servers and tables are not allowed (one can read this database over another connection)")
	case n.GetAlterSystemStmt() != nil:
		refuse("ALTER SYSTEM is not allowed (server settings can run programs or log values)")
	case n.GetLoadStmt() != nil:
		refuse("LOAD is not allowed (a library can read anything)")
	case n.GetAlterTableStmt() != nil:
		r.checkTarget(n.GetAlterTableStmt().Relation, "ALTER TABLE of")
		r.walk(n)
		r.res.DDL = true
	case n.GetIndexStmt() != nil:
		r.checkTarget(n.GetIndexStmt().Relation, "CREATE INDEX on")
		r.res.DDL = true
		r.walk(n) // expressions and the predicate call functions
	case n.GetCreateTrigStmt() != nil:
		ct := n.GetCreateTrigStmt()
		r.checkTarget(ct.Relation, "CREATE TRIGGER on")
		if name := lastName(ct.Funcname); r.cat.UnsafeFunction(name) != "" {
			refuse("a trigger calling %s is not allowed: %s", name, r.cat.UnsafeFunction(name))
		}
		r.walk(ct.WhenClause)
		r.res.DDL = true
	case n.GetCreatePolicyStmt() != nil:
		cp := n.GetCreatePolicyStmt()
		r.checkTarget(cp.Table, "CREATE POLICY on")
		r.policy(cp.Qual, cp.WithCheck)
		r.res.DDL = true
	case n.GetAlterPolicyStmt() != nil:
		ap := n.GetAlterPolicyStmt()
		r.checkTarget(ap.Table, "ALTER POLICY on")
		r.policy(ap.Qual, ap.WithCheck)
		r.res.DDL = true
	case n.GetCreateStatsStmt() != nil:
		for _, rel := range n.GetCreateStatsStmt().Relations {
			if rv := rel.GetRangeVar(); rv != nil {
				r.checkTarget(rv, "CREATE STATISTICS on")
			}
		}
		r.walk(n)
	case n.GetRenameStmt() != nil:
		rs := n.GetRenameStmt()
		if rv := rs.Relation; rv != nil {
			r.checkTarget(rv, "renaming")
		}
		if rs.RenameType == pg_query.ObjectType_OBJECT_SCHEMA && r.cat.holdsMasked(rs.Subname) {
			refuse("renaming the schema %s, which holds masked tables, is not allowed (the masking file names it)", rs.Subname)
		}
		r.res.DDL = true
	case n.GetAlterObjectSchemaStmt() != nil:
		if rv := n.GetAlterObjectSchemaStmt().Relation; rv != nil {
			r.checkTarget(rv, "moving")
		}
		r.res.DDL = true
	case n.GetCreateStmt() != nil:
		// PARTITION OF or INHERITS a masked table: the new table is masked
		// once the catalog is read again, which this statement triggers.
		// Defaults and check constraints are checked for the functions
		// they call (they run on every write).
		r.walk(n)
		r.res.DDL = true
	case n.GetCreateFunctionStmt() != nil:
		r.createFunction(n.GetCreateFunctionStmt())
		r.res.DDL = true
	case n.GetDefineStmt() != nil, n.GetCreateOpClassStmt() != nil, n.GetCreateCastStmt() != nil, n.GetCreateTransformStmt() != nil,
		n.GetCreateConversionStmt() != nil, n.GetAlterOperatorStmt() != nil, n.GetAlterOpFamilyStmt() != nil,
		n.GetCreateRangeStmt() != nil:
		// Operators, aggregates, casts and the like name the functions
		// they call later, implicitly.
		r.namedFunctions(n)
		r.res.DDL = true
		r.walk(n)
	case n.GetAlterFunctionStmt() != nil:
		// ALTER FUNCTION ... SET applies the setting while the body runs,
		// as CREATE FUNCTION ... SET does (BUGS.md 42).
		for _, a := range n.GetAlterFunctionStmt().Actions {
			if d := a.GetDefElem(); d != nil && d.Defname == "set" {
				r.setting(d.Arg.GetVariableSetStmt())
			}
		}
		r.res.DDL = true
		r.walk(n)
	case n.GetDropStmt() != nil, n.GetCreatePlangStmt() != nil, n.GetCreateDomainStmt() != nil,
		n.GetCompositeTypeStmt() != nil, n.GetCreateEnumStmt() != nil, n.GetCreateSchemaStmt() != nil:
		r.res.DDL = true
		r.walk(n)
	case n.GetVariableSetStmt() != nil:
		r.setting(n.GetVariableSetStmt())
		r.walk(n)
	case n.GetAlterRoleSetStmt() != nil:
		r.setting(n.GetAlterRoleSetStmt().Setstmt)
	case n.GetAlterDatabaseSetStmt() != nil:
		r.setting(n.GetAlterDatabaseSetStmt().Setstmt)
	case n.GetTruncateStmt() != nil:
		for _, rel := range n.GetTruncateStmt().Relations {
			if rv := rel.GetRangeVar(); rv != nil {
				if why := r.cat.WriteRefused(rv.Schemaname, rv.Relname, Truncate); why != "" {
					refuse("writing %s is not allowed: %s", rv.Relname, why)
				}
			}
		}
		r.walk(n)
	case n.GetVariableShowStmt() != nil, n.GetTransactionStmt() != nil, n.GetDiscardStmt() != nil,
		n.GetDeallocateStmt() != nil, n.GetExecuteStmt() != nil, n.GetFetchStmt() != nil, n.GetClosePortalStmt() != nil,
		n.GetListenStmt() != nil, n.GetUnlistenStmt() != nil, n.GetNotifyStmt() != nil, n.GetLockStmt() != nil,
		n.GetVacuumStmt() != nil, n.GetGrantStmt() != nil, n.GetGrantRoleStmt() != nil,
		n.GetCommentStmt() != nil, n.GetClusterStmt() != nil, n.GetReindexStmt() != nil, n.GetCheckPointStmt() != nil,
		n.GetConstraintsSetStmt() != nil, n.GetRefreshMatViewStmt() != nil, n.GetCreateRoleStmt() != nil,
		n.GetAlterRoleStmt() != nil, n.GetDropRoleStmt() != nil, n.GetCreateSeqStmt() != nil, n.GetAlterSeqStmt() != nil,
		n.GetAlterDefaultPrivilegesStmt() != nil, n.GetAlterOwnerStmt() != nil, n.GetCreatedbStmt() != nil, n.GetDropdbStmt() != nil:
		// No values flow through these; settings are checked for
		// function calls like every expression.
		r.walk(n)
	default:
		// A statement the rewriter does not know: allowed only when it
		// names nothing masked.
		if r.reads(n) {
			refuse("this kind of statement (%s) over a masked table is not supported", stmtKind(n))
		}
		r.walk(n)
	}
}

// checkTarget refuses DDL on a masked relation or a view over one.
func (r *rewriter) checkTarget(rv *pg_query.RangeVar, what string) {
	if rv == nil {
		return
	}
	if rel := r.cat.Relation(rv.Schemaname, rv.Relname); rel != nil {
		refuse("%s the masked table %s.%s is not allowed", what, rel.Schema, rel.Name)
	}
	if v := r.cat.View(rv.Schemaname, rv.Relname); v != nil {
		refuse("%s %s.%s, which reads a masked table, is not allowed", what, v.Schema, v.Name)
	}
}

// selectStmt rewrites a SELECT (or VALUES, or a set operation).
func (r *rewriter) selectStmt(s *pg_query.SelectStmt) {
	if s == nil || r.ours[s] {
		return
	}
	pushed := r.with(s.WithClause)
	defer r.pop(pushed)
	if s.Larg != nil || s.Rarg != nil {
		r.selectStmt(s.Larg)
		r.selectStmt(s.Rarg)
	}
	r.fromItems(s, s.FromClause)
	if s.IntoClause != nil {
		r.res.DDL = true
	}
	r.walkFields(s, "from_clause", "with_clause", "larg", "rarg")
}

// fromItems rewrites the FROM items of a statement; column references of
// the statement that name a replaced relation with its schema
// (public.customers.id) are made to name it as the subquery is named
// (customers.id).
func (r *rewriter) fromItems(stmt proto.Message, items []*pg_query.Node) {
	saved := r.requalified
	r.requalified = nil
	for _, item := range items {
		r.fromItem(item)
	}
	renamed := r.requalified
	r.requalified = saved
	if len(renamed) == 0 {
		return
	}
	eachMessage(stmt.ProtoReflect(), func(x *pg_query.Node) bool {
		if sub := x.GetSelectStmt(); sub != nil && r.ours[sub] {
			return false
		}
		if cr := x.GetColumnRef(); cr != nil {
			for _, rv := range renamed {
				if n := qualifiedBy(cr, rv); n > 0 {
					cr.Fields = cr.Fields[n:]
					r.res.Changed = true
					break
				}
			}
		}
		return true
	})
}

// qualifiedBy returns how many leading fields of a column reference name
// the schema (and catalog) of rv before its relation name, or 0.
func qualifiedBy(cr *pg_query.ColumnRef, rv *pg_query.RangeVar) int {
	want := []string{rv.Schemaname, rv.Relname}
	if rv.Catalogname != "" {
		want = append([]string{rv.Catalogname}, want...)
	}
	if len(cr.Fields) <= len(want) {
		return 0
	}
	for i, w := range want {
		if cr.Fields[i].GetString_() == nil || cr.Fields[i].GetString_().Sval != w {
			return 0
		}
	}
	return len(want) - 1
}

// with makes a WITH clause's names visible and rewrites its queries; it
// returns whether a scope was pushed.
func (r *rewriter) with(w *pg_query.WithClause) bool {
	if w == nil {
		return false
	}
	scope := map[string]bool{}
	r.scopes = append(r.scopes, scope)
	if w.Recursive {
		for _, c := range w.Ctes {
			scope[c.GetCommonTableExpr().GetCtename()] = true
		}
	}
	for _, c := range w.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		r.statement(cte.Ctequery)
		scope[cte.Ctename] = true // visible to the CTEs after it
	}
	return true
}

func (r *rewriter) pop(pushed bool) {
	if pushed {
		r.scopes = r.scopes[:len(r.scopes)-1]
	}
}

// isCTE reports whether an unqualified name refers to a CTE in scope.
func (r *rewriter) isCTE(rv *pg_query.RangeVar) bool {
	if rv.Schemaname != "" || rv.Catalogname != "" {
		return false
	}
	for i := len(r.scopes) - 1; i >= 0; i-- {
		if r.scopes[i][rv.Relname] {
			return true
		}
	}
	return false
}

// fromItem rewrites one FROM item in place.
func (r *rewriter) fromItem(n *pg_query.Node) {
	switch {
	case n.GetRangeVar() != nil:
		if sub := r.relation(n.GetRangeVar(), nil); sub != nil {
			n.Node = sub.Node
		}
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		r.fromItem(j.Larg)
		r.fromItem(j.Rarg)
		r.walk(j.Quals)
	case n.GetRangeTableSample() != nil:
		ts := n.GetRangeTableSample()
		if rv := ts.Relation.GetRangeVar(); rv != nil {
			if sub := r.relation(rv, ts); sub != nil {
				n.Node = sub.Node
				return
			}
		}
		r.walk(n)
	default:
		r.walk(n) // subqueries, functions (LATERAL ones included)
	}
}

// relation returns the subquery replacing a FROM reference to a masked
// relation or a view over one (nil: leave it). sample, when set, is the
// TABLESAMPLE around the reference (kept inside the subquery).
func (r *rewriter) relation(rv *pg_query.RangeVar, sample *pg_query.RangeTableSample) *pg_query.Node {
	if r.isCTE(rv) {
		return nil
	}
	if reason := deniedRelations[rv.Relname]; reason != "" {
		refuse("reading %s is not allowed: %s", rv.Relname, reason)
	}
	if r.cat.cfg.usesHMAC() && keyExposing[rv.Relname] {
		refuse("reading %s is not allowed: it shows statement texts, which carry the keyed hash's key", rv.Relname)
	}
	if why := r.cat.ReadRefused(rv.Schemaname, rv.Relname); why != "" {
		r.res.Touched = true
		r.res.Undecided = r.cat.undecided(rv.Schemaname, rv.Relname)
		refuse("reading %s is not allowed: %s", rv.Relname, why)
	}
	r.unambiguous(rv)
	if rel := r.cat.Relation(rv.Schemaname, rv.Relname); rel != nil {
		r.res.Touched, r.res.Changed = true, true
		r.noteRequalified(rv)
		return r.maskedSubquery(rel, rv, sample)
	}
	v := r.cat.View(rv.Schemaname, rv.Relname)
	if v == nil {
		r.noteUnseen(rv)
		return nil
	}
	r.res.Touched = true
	if v.Kind != 'v' {
		what := map[byte]string{'m': "materialized view", 'f': "foreign table"}[v.Kind]
		if what == "" {
			what = "table with rules"
		}
		refuse("the %s %s.%s reads a masked table", what, v.Schema, v.Name)
	}
	if sample != nil {
		refuse("TABLESAMPLE of the view %s.%s, which reads a masked table, is not supported", v.Schema, v.Name)
	}
	r.noteRequalified(rv)
	return r.inlineView(v, rv)
}

// noteRequalified notes a schema-qualified reference without an alias,
// which the subquery replacing it names by its relation name alone.
func (r *rewriter) noteRequalified(rv *pg_query.RangeVar) {
	if rv.Alias == nil && rv.Schemaname != "" {
		r.requalified = append(r.requalified, rv)
	}
}

// maskedSubquery builds (SELECT c1, mask(c2) AS c2, ... FROM [ONLY] rel) AS alias.
// maskedAlias names the masked table inside its masking subquery.
const maskedAlias = "pgproxy_masked"

// subqueryTemplate returns the masking subquery of a relation without its
// FROM item, parsed once per catalog (the caller clones it).
func (c *Catalog) subqueryTemplate(rel *Relation) *pg_query.SelectStmt {
	if t, ok := c.subqueries.Load(rel); ok {
		return t.(*pg_query.SelectStmt)
	}
	var cols []string
	for _, col := range rel.Columns {
		ref := maskedAlias + "." + quoteIdent(col.Name)
		if col.Mask == nil {
			cols = append(cols, ref)
			continue
		}
		if err := checkType(*col.Mask, col.Type); err != nil {
			refuse("column %s.%s.%s: %v", rel.Schema, rel.Name, col.Name, err)
		}
		cols = append(cols, maskSQL(*col.Mask, col.Type, c.cfg.HMACKey, ref)+" AS "+quoteIdent(col.Name))
	}
	tree, err := pg_query.Parse("SELECT " + strings.Join(cols, ", ") + " FROM pgproxy_placeholder AS " + maskedAlias)
	if err != nil {
		refuse("cannot build the masking subquery of %s.%s: %v", rel.Schema, rel.Name, err)
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	c.subqueries.Store(rel, sel)
	return sel
}

func (r *rewriter) maskedSubquery(rel *Relation, rv *pg_query.RangeVar, sample *pg_query.RangeTableSample) *pg_query.Node {
	if rel.Config == nil {
		refuse("the masked table %s.%s has no configuration", rel.Schema, rel.Name)
	}
	const inner = maskedAlias
	sel := proto.Clone(r.cat.subqueryTemplate(rel)).(*pg_query.SelectStmt)
	innerRV := proto.Clone(rv).(*pg_query.RangeVar)
	innerRV.Alias = &pg_query.Alias{Aliasname: inner}
	var from *pg_query.Node
	if sample != nil {
		ts := proto.Clone(sample).(*pg_query.RangeTableSample)
		ts.Relation = &pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: innerRV}}
		from = &pg_query.Node{Node: &pg_query.Node_RangeTableSample{RangeTableSample: ts}}
		r.walk(from) // the sample's arguments
	} else {
		from = &pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: innerRV}}
	}
	sel.FromClause = []*pg_query.Node{from}
	r.ours[sel] = true
	alias := rv.Alias
	if alias == nil {
		alias = &pg_query.Alias{Aliasname: rv.Relname}
	}
	return &pg_query.Node{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}, Alias: alias}}}
}

// inlineView replaces a view over masked tables by its definition,
// rewritten, so that it reads masked values.
func (r *rewriter) inlineView(v *View, rv *pg_query.RangeVar) *pg_query.Node {
	if r.depth >= maxViewDepth {
		refuse("views over %s.%s are nested more than %d deep", v.Schema, v.Name, maxViewDepth)
	}
	for _, seen := range r.viewing {
		if seen == v.Schema+"."+v.Name {
			refuse("the view %s.%s refers to itself", v.Schema, v.Name)
		}
	}
	tree, err := pg_query.Parse(v.Def)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		refuse("the definition of the view %s.%s, which reads a masked table, cannot be rewritten", v.Schema, v.Name)
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	r.depth++
	r.viewing = append(r.viewing, v.Schema+"."+v.Name)
	saved := r.scopes
	r.scopes = nil // the view's names are resolved where it was defined
	r.selectStmt(sel)
	r.scopes = saved
	r.viewing = r.viewing[:len(r.viewing)-1]
	r.depth--
	r.ours[sel] = true
	r.res.Changed = true
	alias := rv.Alias
	if alias == nil {
		alias = &pg_query.Alias{Aliasname: rv.Relname}
	}
	return &pg_query.Node{Node: &pg_query.Node_RangeSubselect{RangeSubselect: &pg_query.RangeSubselect{
		Subquery: &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}, Alias: alias}}}
}

// target is the masked relation a data-modifying statement writes, as the
// statement names it.
type target struct {
	rel   *Relation
	alias string
}

// dmlTarget returns the masked relation a data-modifying statement of the
// kinds ops writes, or nil; it refuses writes that run unsafe functions
// (triggers, defaults) and writes through views over masked tables.
func (r *rewriter) dmlTarget(rv *pg_query.RangeVar, ops int16) *target {
	// The target of INSERT, UPDATE, DELETE and MERGE is always a table:
	// a CTE of the same name does not hide it.
	if rv == nil {
		return nil
	}
	if why := r.cat.WriteRefused(rv.Schemaname, rv.Relname, ops); why != "" {
		r.res.Touched = true
		r.res.Undecided = r.cat.undecided(rv.Schemaname, rv.Relname)
		refuse("writing %s is not allowed: %s", rv.Relname, why)
	}
	r.unambiguous(rv)
	if v := r.cat.View(rv.Schemaname, rv.Relname); v != nil {
		refuse("writing through %s.%s, which reads a masked table, is not supported", v.Schema, v.Name)
	}
	rel := r.cat.Relation(rv.Schemaname, rv.Relname)
	if rel == nil {
		r.noteUnseen(rv) // RETURNING shows what it wrote
		return nil
	}
	r.res.Touched = true
	t := &target{rel: rel, alias: rv.Relname}
	if rv.Alias != nil {
		t.alias = rv.Alias.Aliasname
	}
	return t
}

func (r *rewriter) insert(s *pg_query.InsertStmt) {
	pushed := r.with(s.WithClause)
	defer r.pop(pushed)
	ops := Insert
	if s.OnConflictClause != nil && s.OnConflictClause.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
		ops |= Update
	}
	t := r.dmlTarget(s.Relation, ops)
	r.statement(s.SelectStmt)
	if oc := s.OnConflictClause; oc != nil {
		if t != nil && oc.Infer == nil && t.rel.UniqueMasked() {
			refuse("ON CONFLICT without a conflict target on %s.%s, whose unique index covers a masked column, would tell whether a value exists", t.rel.Schema, t.rel.Name)
		}
		if t != nil && oc.Infer != nil {
			if (oc.Infer.Conname != "" && !t.rel.SafeConstraint(oc.Infer.Conname)) || t.infers(oc.Infer) {
				refuse("ON CONFLICT on a masked column of %s.%s would tell whether a value exists", t.rel.Schema, t.rel.Name)
			}
		}
		for _, set := range oc.TargetList {
			t.partOfMasked(set)
			if t != nil && t.readsExcept(set, "excluded") {
				refuse("ON CONFLICT DO UPDATE reading a masked column of %s.%s would copy its value", t.rel.Schema, t.rel.Name)
			}
			r.walk(set)
		}
		r.where(oc.WhereClause, t)
	}
	s.ReturningList = r.returning(s.ReturningList, t)
	// The rest (the column list, whose subscripts are expressions: a
	// subquery or a function there runs like any other) is walked.
	r.walkFields(s, "relation", "select_stmt", "on_conflict_clause", "returning_list", "with_clause")
}

// where rewrites a WHERE clause of a data-modifying statement: the
// target's masked columns are masked in it, and it is walked like any
// expression.
func (r *rewriter) where(w *pg_query.Node, t *target) {
	if t != nil {
		r.maskRefs(w, t)
	}
	r.walk(w)
}

func (r *rewriter) update(s *pg_query.UpdateStmt) {
	pushed := r.with(s.WithClause)
	defer r.pop(pushed)
	t := r.dmlTarget(s.Relation, Update)
	r.fromItems(s, s.FromClause)
	for _, set := range s.TargetList {
		t.partOfMasked(set)
		// The whole target: a subscript of the column set (note[ssn::int])
		// reads the row as the value does.
		if t != nil && t.reads(set) {
			refuse("an UPDATE that reads a masked column of %s.%s would copy its value", t.rel.Schema, t.rel.Name)
		}
		r.walk(set)
	}
	r.where(s.WhereClause, t)
	s.ReturningList = r.returning(s.ReturningList, t)
}

func (r *rewriter) delete(s *pg_query.DeleteStmt) {
	pushed := r.with(s.WithClause)
	defer r.pop(pushed)
	t := r.dmlTarget(s.Relation, Delete)
	r.fromItems(s, s.UsingClause)
	r.where(s.WhereClause, t)
	s.ReturningList = r.returning(s.ReturningList, t)
}

func (r *rewriter) merge(s *pg_query.MergeStmt) {
	pushed := r.with(s.WithClause)
	defer r.pop(pushed)
	if t := r.dmlTarget(s.Relation, Insert|Update|Delete); t != nil {
		refuse("MERGE into the masked table %s.%s is not supported", t.rel.Schema, t.rel.Name)
	}
	r.fromItem(s.SourceRelation)
	r.walk(s.JoinCondition)
	for _, w := range s.MergeWhenClauses {
		r.walk(w)
	}
}

// returning masks the masked columns of the target a RETURNING list reads
// (the row written may be one that was there before: ON CONFLICT, UPDATE)
// and returns the list, a star expanded into the target's columns.
func (r *rewriter) returning(list []*pg_query.Node, t *target) []*pg_query.Node {
	if t == nil {
		for _, n := range list {
			r.walk(n)
		}
		return list
	}
	var out []*pg_query.Node
	for _, n := range list {
		rt := n.GetResTarget()
		if cr := rt.GetVal().GetColumnRef(); cr != nil && isStar(cr, t.alias) {
			for _, c := range t.rel.Columns {
				ref := colRef(t.alias, c.Name)
				if c.Mask != nil {
					ref = r.maskExpr(t.rel, c, ref)
				}
				out = append(out, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Name: c.Name, Val: ref}}})
			}
			r.res.Changed = true
			continue
		}
		if rt != nil && rt.Name == "" {
			if cr := rt.GetVal().GetColumnRef(); cr != nil {
				rt.Name = lastField(cr) // keep the column's name after masking
			}
		}
		r.maskRefs(n, t)
		r.walk(n)
		out = append(out, n)
	}
	return out
}

func isStar(cr *pg_query.ColumnRef, alias string) bool {
	f := cr.Fields
	if len(f) == 0 || f[len(f)-1].GetAStar() == nil {
		return false
	}
	return len(f) == 1 || (len(f) >= 2 && f[len(f)-2].GetString_().GetSval() == alias)
}

func lastField(cr *pg_query.ColumnRef) string {
	if len(cr.Fields) == 0 {
		return ""
	}
	return cr.Fields[len(cr.Fields)-1].GetString_().GetSval()
}

// maskRefs replaces, in an expression over a data-modifying statement's
// target, every reference to a masked column of the target by its mask.
func (r *rewriter) maskRefs(n *pg_query.Node, t *target) {
	if n == nil {
		return
	}
	eachNode(n, func(x *pg_query.Node) bool {
		if sub := x.GetSelectStmt(); sub != nil && r.ours[sub] {
			return false
		}
		cr := x.GetColumnRef()
		if cr == nil {
			return true
		}
		col, whole := t.column(cr)
		if whole {
			refuse("a whole-row reference to the masked table %s.%s is not supported here", t.rel.Schema, t.rel.Name)
		}
		if col != nil && col.Mask != nil {
			x.Node = r.maskExpr(t.rel, *col, proto.Clone(x).(*pg_query.Node)).Node
			r.res.Changed = true
			return false
		}
		return true
	})
}

// column returns the target's column a reference names (nil: another), or
// whole when it is the whole row or a star.
func (t *target) column(cr *pg_query.ColumnRef) (col *RelColumn, whole bool) {
	var names []string
	for _, f := range cr.Fields {
		if f.GetAStar() != nil {
			if len(names) == 0 || names[len(names)-1] == t.alias {
				return nil, true
			}
			return nil, false
		}
		names = append(names, f.GetString_().GetSval())
	}
	find := func(name string) *RelColumn {
		for i := range t.rel.Columns {
			if t.rel.Columns[i].Name == name {
				return &t.rel.Columns[i]
			}
		}
		return nil
	}
	switch len(names) {
	case 1:
		if c := find(names[0]); c != nil {
			return c, false
		}
		return nil, names[0] == t.alias
	default:
		if names[len(names)-2] == t.alias {
			return find(names[len(names)-1]), false
		}
	}
	return nil, false
}

// partOfMasked refuses a SET item that assigns a part of a masked column
// (note['k'] = ..., a field, an array slice): the server reads the column's
// value to build the new one, and its errors tell about that value (which
// keys exist, what they hold, how long an array is).
func (t *target) partOfMasked(set *pg_query.Node) {
	rt := set.GetResTarget()
	if t == nil || rt == nil || len(rt.Indirection) == 0 {
		return
	}
	if t.rel.Masked(rt.Name) {
		refuse("assigning a part of the masked column %s of %s.%s is not allowed (it reads the value)", rt.Name, t.rel.Schema, t.rel.Name)
	}
}

// reads reports whether an expression reads a masked column of the target.
func (t *target) reads(n *pg_query.Node) bool { return t.readsExcept(n, "") }

func (t *target) readsExcept(n *pg_query.Node, qualifier string) bool {
	found := false
	eachNode(n, func(x *pg_query.Node) bool {
		cr := x.GetColumnRef()
		if cr == nil || found {
			return !found
		}
		if qualifier != "" && len(cr.Fields) == 2 && cr.Fields[0].GetString_().GetSval() == qualifier {
			return true
		}
		col, whole := t.column(cr)
		found = whole || (col != nil && col.Mask != nil)
		return !found
	})
	return found
}

// infers reports whether an ON CONFLICT target names a masked column.
func (t *target) infers(ic *pg_query.InferClause) bool {
	for _, e := range ic.IndexElems {
		el := e.GetIndexElem()
		if el == nil {
			continue
		}
		if t.rel.Masked(el.Name) || (el.Expr != nil && t.reads(el.Expr)) {
			return true
		}
	}
	return ic.WhereClause != nil && t.reads(ic.WhereClause)
}

// reads reports whether a statement reads a masked relation or a view over
// one.
func (r *rewriter) reads(n *pg_query.Node) bool {
	found := false
	sensitive := func(rv *pg_query.RangeVar) bool {
		return rv != nil && (r.cat.Relation(rv.Schemaname, rv.Relname) != nil || r.cat.View(rv.Schemaname, rv.Relname) != nil)
	}
	eachNode(n, func(x *pg_query.Node) bool {
		// The target of a data-modifying statement is a table even where a
		// CTE has its name.
		switch {
		case x.GetInsertStmt() != nil:
			found = sensitive(x.GetInsertStmt().Relation)
		case x.GetUpdateStmt() != nil:
			found = sensitive(x.GetUpdateStmt().Relation)
		case x.GetDeleteStmt() != nil:
			found = sensitive(x.GetDeleteStmt().Relation)
		case x.GetMergeStmt() != nil:
			found = sensitive(x.GetMergeStmt().Relation)
		}
		if rv := x.GetRangeVar(); rv != nil && !r.isCTE(rv) && sensitive(rv) {
			found = true
		}
		return !found
	})
	return found
}

func (r *rewriter) copy(s *pg_query.CopyStmt) {
	r.res.Copy = true
	if s.IsProgram {
		refuse("COPY with PROGRAM is not allowed (a program can read the database another way)")
	}
	if s.Filename != "" {
		refuse("COPY to or from a server file is not allowed (server files are a channel out of masking)")
	}
	if s.Query != nil {
		r.statement(s.Query)
		return
	}
	// The WHERE of COPY FROM (functions run there for every row read) and
	// the options are walked like any expression.
	r.walkFields(s, "relation", "query", "attlist")
	rv := s.Relation
	if rv != nil && s.IsFrom {
		if why := r.cat.WriteRefused(rv.Schemaname, rv.Relname, Insert); why != "" {
			refuse("writing %s is not allowed: %s", rv.Relname, why)
		}
	}
	if rv == nil || s.IsFrom {
		return // COPY FROM STDIN writes; what it writes is the client's
	}
	if v := r.cat.View(rv.Schemaname, rv.Relname); v != nil {
		refuse("COPY of %s.%s, which reads a masked table, is not supported", v.Schema, v.Name)
	}
	rel := r.cat.Relation(rv.Schemaname, rv.Relname)
	if rel == nil {
		r.noteUnseen(rv)
		return
	}
	// COPY t [(cols)] TO STDOUT becomes COPY (SELECT cols FROM t) TO STDOUT:
	// the rows of the masked subquery.
	sel := &pg_query.SelectStmt{LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT, Op: pg_query.SetOperation_SETOP_NONE}
	if len(s.Attlist) == 0 {
		sel.TargetList = []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{
			Val: &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: []*pg_query.Node{{Node: &pg_query.Node_AStar{AStar: &pg_query.A_Star{}}}}}}}}}}}
	}
	for _, a := range s.Attlist {
		sel.TargetList = append(sel.TargetList, &pg_query.Node{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: colRef("", a.GetString_().GetSval())}}})
	}
	from := &pg_query.Node{Node: &pg_query.Node_RangeVar{RangeVar: proto.Clone(rv).(*pg_query.RangeVar)}}
	sel.FromClause = []*pg_query.Node{from}
	r.fromItem(from)
	s.Relation, s.Attlist = nil, nil
	s.Query = &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sel}}
	r.res.Changed, r.res.Touched = true, true
}

func (r *rewriter) explain(e *pg_query.ExplainStmt) {
	analyze := false
	for _, o := range e.Options {
		if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "analyze") {
			analyze = !sqlparse.OptionOff(d.Arg)
		}
	}
	if r.cat.cfg.usesHMAC() && runsPrepared(e.Query) {
		refuse("EXPLAIN of a prepared statement could show the keyed hash's key (the statement may read a masked table)")
	}
	if r.reads(e.Query) {
		if analyze {
			refuse("EXPLAIN ANALYZE of a statement over a masked table is not allowed (its row counts tell what the masked values are)")
		}
		if r.cat.cfg.usesHMAC() {
			refuse("EXPLAIN of a statement over a masked table would show the keyed hash's key")
		}
	}
	r.statement(e.Query)
}

// walk visits every node under n: SELECTs anywhere (sub-links, CTEs,
// function arguments) are rewritten, function calls are checked.
func (r *rewriter) walk(n *pg_query.Node) {
	if n == nil {
		return
	}
	eachNode(n, func(x *pg_query.Node) bool {
		switch {
		case x.GetSelectStmt() != nil:
			r.selectStmt(x.GetSelectStmt())
			return false
		case x.GetJoinExpr() != nil:
			r.fromItem(x)
			return false
		case x.GetFuncCall() != nil:
			r.function(x.GetFuncCall())
		case x.GetInsertStmt() != nil, x.GetUpdateStmt() != nil, x.GetDeleteStmt() != nil, x.GetMergeStmt() != nil:
			r.statement(x) // data-modifying WITH
			return false
		}
		return true
	})
}

// walkFields walks every field of a message except the named ones.
func (r *rewriter) walkFields(m proto.Message, skip ...string) {
	pm := m.ProtoReflect()
	pm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		for _, s := range skip {
			if string(fd.Name()) == s {
				return true
			}
		}
		eachValue(fd, v, func(x *pg_query.Node) { r.walk(x) })
		return true
	})
}

// function refuses calls of functions that read what masking cannot see.
func (r *rewriter) function(fc *pg_query.FuncCall) {
	if len(fc.Funcname) == 0 {
		return
	}
	name := fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval()
	if reason := deniedFunction(name); reason != "" {
		refuse("calling %s is not allowed: %s", name, reason)
	}
	if r.cat.cfg.usesHMAC() && keyExposing[name] {
		refuse("calling %s is not allowed: it shows statement texts, which carry the keyed hash's key", name)
	}
	if reason := r.cat.UnsafeFunction(name); reason != "" {
		r.res.Touched = true
		refuse("calling %s is not allowed: %s", name, reason)
	}
	if name == "set_config" {
		r.setConfig(fc)
	}
	if name == "ts_rewrite" && len(fc.Args) == 2 {
		refuse("calling ts_rewrite with a query is not allowed: it runs SQL given as text")
	}
	if r.cat.known != nil && !r.cat.known[name] && !r.inBody {
		refuse("the function %s is not in the catalog the proxy read (created in this transaction? commit it first)", name)
	}
}

// maskExpr returns the mask of column c of rel over ref.
func (r *rewriter) maskExpr(rel *Relation, c RelColumn, ref *pg_query.Node) *pg_query.Node {
	if err := checkType(*c.Mask, c.Type); err != nil {
		refuse("column %s.%s.%s: %v", rel.Schema, rel.Name, c.Name, err)
	}
	tree, err := pg_query.Parse("SELECT " + maskSQL(*c.Mask, c.Type, r.cat.cfg.HMACKey, "pgproxy_value"))
	if err != nil {
		refuse("cannot build the mask of %s.%s.%s: %v", rel.Schema, rel.Name, c.Name, err)
	}
	e := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val
	eachNode(e, func(x *pg_query.Node) bool {
		if cr := x.GetColumnRef(); cr != nil && lastField(cr) == "pgproxy_value" {
			x.Node = proto.Clone(ref).(*pg_query.Node).Node
			return false
		}
		return true
	})
	return e
}

func colRef(qualifier, name string) *pg_query.Node {
	var fields []*pg_query.Node
	if qualifier != "" {
		fields = append(fields, &pg_query.Node{Node: &pg_query.Node_String_{String_: &pg_query.String{Sval: qualifier}}})
	}
	fields = append(fields, &pg_query.Node{Node: &pg_query.Node_String_{String_: &pg_query.String{Sval: name}}})
	return &pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: &pg_query.ColumnRef{Fields: fields}}}
}

// quoteIdent quotes an identifier for SQL text.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func stmtKind(n *pg_query.Node) string {
	name := string(n.ProtoReflect().WhichOneof(n.ProtoReflect().Descriptor().Oneofs().Get(0)).Name())
	return name
}

// eachNode calls fn for n and, while fn returns true, for every node below.
func eachNode(n *pg_query.Node, fn func(*pg_query.Node) bool) {
	if n == nil || n.Node == nil {
		return
	}
	if !fn(n) {
		return
	}
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().Get(0)
	f := m.WhichOneof(od)
	if f == nil || f.Kind() != protoreflect.MessageKind {
		return
	}
	eachMessage(m.Get(f).Message(), fn)
}

func eachMessage(m protoreflect.Message, fn func(*pg_query.Node) bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		eachValue(fd, v, func(x *pg_query.Node) { eachNode(x, fn) }, func(sub protoreflect.Message) { eachMessage(sub, fn) })
		return true
	})
}

// eachValue calls node for every Node a field holds and msg (when given)
// for every other message.
func eachValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, node func(*pg_query.Node), msg ...func(protoreflect.Message)) {
	if fd.Kind() != protoreflect.MessageKind {
		return
	}
	visit := func(m protoreflect.Message) {
		if x, ok := m.Interface().(*pg_query.Node); ok {
			node(x)
			return
		}
		if len(msg) > 0 {
			msg[0](m)
			return
		}
		eachMessage(m, func(x *pg_query.Node) bool { node(x); return false })
	}
	switch {
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			visit(l.Get(i).Message())
		}
	case fd.IsMap():
	default:
		visit(v.Message())
	}
}

// lastName is the last element of a qualified name.
func lastName(names []*pg_query.Node) string {
	if len(names) == 0 {
		return ""
	}
	return names[len(names)-1].GetString_().GetSval()
}

// policy checks a row security policy's expressions: they run on every
// read or write of its table, so they may neither read a masked table nor
// call a function that does.
func (r *rewriter) policy(exprs ...*pg_query.Node) {
	for _, e := range exprs {
		if e == nil {
			continue
		}
		if r.reads(e) {
			refuse("a row security policy that reads a masked table would compare its clear values")
		}
		r.walk(e)
	}
}

// createFunction checks a function or procedure being created: its body
// runs without the proxy seeing it (called, as a trigger, an operator, a
// default...), so it may not read a masked table, a view over one or an
// unsafe function, nor run SQL given as text, nor be in a language whose
// SQL the proxy cannot read.
func (r *rewriter) createFunction(f *pg_query.CreateFunctionStmt) {
	what := "function"
	if f.IsProcedure {
		what = "procedure"
	}
	name := lastName(f.Funcname)
	lang, body := "sql", ""
	for _, o := range f.Options {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		switch d.Defname {
		case "language":
			lang = strings.ToLower(d.Arg.GetString_().GetSval())
		case "as":
			if l := d.Arg.GetList(); l != nil && len(l.Items) > 0 {
				body = l.Items[0].GetString_().GetSval()
			}
		case "set":
			r.setting(d.Arg.GetVariableSetStmt())
		}
	}
	prev := r.inBody
	r.inBody = true
	defer func() { r.inBody = prev }()
	for _, p := range f.Parameters {
		r.walk(p) // parameter defaults
	}
	if f.SqlBody != nil {
		if r.reads(f.SqlBody) {
			refuse("the %s %s reads a masked table: its body would see clear values (and keep the rewritten text)", what, name)
		}
		r.walk(f.SqlBody)
		return
	}
	if lang != "sql" && lang != "plpgsql" {
		refuse("creating the %s %s in %s is not allowed while masking is on: the proxy cannot read its body", what, name, lang)
	}
	if m := dynamicSQL.FindString(body); m != "" {
		refuse("the %s %s runs SQL given as text (%s), which the proxy cannot check", what, name, strings.ToLower(m))
	}
	if unicodeEscapes.MatchString(body) {
		refuse("the body of the %s %s spells names with U& escapes, which the proxy does not read", what, name)
	}
	if m := r.cat.sensitiveWords().FindStringSubmatch(body); m != nil {
		refuse("the body of the %s %s reads %s, which is masked: it would see clear values", what, name, strings.ToLower(m[2]))
	}
	if r.cat.cfg.usesHMAC() && statementSettings.MatchString(body) {
		refuse("the body of the %s %s changes what the server shows of statements, which carry the keyed hash's key", what, name)
	}
	if lang != "sql" {
		// A denied name anywhere in a PL/pgSQL body refuses it, in a
		// string too (a name built at run time, 'cust' || 'omers' for
		// pg_stats' tablename, escapes the parse below): BUGS.md 42.
		if m := bodyDenied.FindStringSubmatch(body); m != nil {
			refuse("the body of the %s %s names %s, which is not allowed in a %s body while masking is on", what, name, strings.ToLower(m[2]), lang)
		}
		// And every SQL statement and expression of the body gets the
		// checks a statement sent gets (SET NAMES is client_encoding under
		// another name: BUGS.md 42).
		for _, text := range r.plpgsqlSQL(f, what, name) {
			r.bodySQL(text, what, name)
		}
		return
	}
	r.bodySQL(body, what, name)
}

// bodySQL checks SQL of a function body: each statement gets the checks a
// statement sent gets (SET, DO, a nested CREATE FUNCTION...: BUGS.md 42),
// and may not read a masked table.
func (r *rewriter) bodySQL(text, what, name string) {
	tree, err := pg_query.Parse(text)
	if err != nil {
		refuse("the body of the %s %s cannot be read: %v", what, name, err)
	}
	for _, st := range tree.Stmts {
		if r.reads(st.Stmt) {
			refuse("the body of the %s %s reads a masked table: it would see clear values", what, name)
		}
		r.statement(st.Stmt)
	}
}

// namedFunctions refuses a statement (CREATE OPERATOR, AGGREGATE, CAST...)
// that names an unsafe function, a built-in one included: it would be
// called without a function call in the statement that runs it, so its
// arguments could not be checked either (ts_rewrite's query form,
// set_config of a setting masking depends on: BUGS.md 42).
func (r *rewriter) namedFunctions(n *pg_query.Node) {
	eachNode(n, func(x *pg_query.Node) bool {
		if s := x.GetString_(); s != nil {
			if why := r.unsafeToName(s.Sval); why != "" {
				refuse("naming the function %s here is not allowed: %s", s.Sval, why)
			}
		}
		return true
	})
}

// unsafeToName returns why a function may not be named for an implicit
// call, or "".
func (r *rewriter) unsafeToName(fn string) string {
	if why := r.cat.UnsafeFunction(fn); why != "" {
		return why
	}
	name := strings.ToLower(fn)
	if why := deniedFunction(name); why != "" {
		return why
	}
	switch {
	case name == "ts_rewrite":
		return "it runs SQL given as text"
	case name == "set_config":
		return "it changes settings masking depends on, with values the proxy would not see"
	case r.cat.cfg.usesHMAC() && keyExposing[name]:
		return "it shows statement texts, which carry the keyed hash's key"
	}
	return ""
}

// setting checks SET (and ALTER ROLE or DATABASE ... SET) of the settings
// masking depends on (checkSetting). Whatever the value, the statement is
// marked touched, so that its decision is never shared with a text of the
// same shape and another value.
func (r *rewriter) setting(vs *pg_query.VariableSetStmt) {
	if vs == nil || !r.guarded(vs.Name) {
		return
	}
	r.res.Touched = true
	switch vs.Kind {
	case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET, pg_query.VariableSetKind_VAR_RESET_ALL:
		return
	}
	value, known := "", false
	if len(vs.Args) == 1 {
		if c := vs.Args[0].GetAConst(); c != nil && c.GetSval() != nil {
			value, known = c.GetSval().Sval, true
		}
	}
	r.checkSetting(vs.Name, value, known)
}

// setConfig is setting for set_config(name, value, local): a name that is
// not a constant, or a value that is not for a setting masking depends on,
// cannot be checked.
func (r *rewriter) setConfig(fc *pg_query.FuncCall) {
	r.res.Touched = true
	constant := func(i int) (string, bool) {
		if i >= len(fc.Args) {
			return "", false
		}
		if c := fc.Args[i].GetAConst(); c != nil && c.GetSval() != nil {
			return c.GetSval().Sval, true
		}
		return "", false
	}
	name, ok := constant(0)
	if !ok {
		refuse("set_config with a setting name that is not a constant is not allowed while masking is on (the setting could change how statements are read or shown)")
	}
	if !r.guarded(name) {
		return
	}
	value, known := constant(1)
	r.checkSetting(name, value, known)
}

// guarded reports whether masking depends on a setting: how the server
// reads statement text (standard_conforming_strings: with it off, a text
// the proxy reads as one string literal is code to the server), and, with
// an hmac mask, what sends the session's statement texts or trees to the
// client (they carry the keyed hash's key).
func (r *rewriter) guarded(name string) bool {
	return strings.EqualFold(name, "standard_conforming_strings") || strings.EqualFold(name, "client_encoding") ||
		(r.cat.cfg.usesHMAC() && showsStatements(name))
}

// checkSetting refuses a value of a guarded setting that masking cannot
// live with (known is false for a value that is not a constant).
func (r *rewriter) checkSetting(name, value string, known bool) {
	if strings.EqualFold(name, "standard_conforming_strings") {
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "on", "true", "yes", "1":
			if known {
				return
			}
		}
		refuse("setting standard_conforming_strings to anything but on is not allowed while masking is on: the proxy reads statements as the server does only with it on")
	}
	if strings.EqualFold(name, "client_encoding") {
		// The proxy reads statements as UTF-8. A statement pipelined after
		// a change to another encoding would be checked before the server
		// reports it, and read by the server as other characters (in SJIS,
		// 0x5C can end a multibyte character and so swallow a quote):
		// BUGS.md 42. RESET goes back to the session's first encoding,
		// which the session knows.
		if known && utf8Encoding(value) {
			return
		}
		refuse("setting client_encoding to anything but UTF8 is not allowed while masking is on: the proxy reads statements as UTF-8 (connect with another client_encoding instead)")
	}
	if !known || statementShowing(name, value) {
		refuse("setting %s to %s is not allowed: the server would send statement texts, which carry the keyed hash's key", name, value)
	}
}

// runsPrepared reports whether a statement runs a prepared statement
// (EXECUTE), whose text the rewriter does not see here.
func runsPrepared(n *pg_query.Node) bool {
	found := false
	eachNode(n, func(x *pg_query.Node) bool {
		found = found || x.GetExecuteStmt() != nil
		return !found
	})
	return found
}

// noteUnseen notes a reference to a relation the catalog has not seen.
func (r *rewriter) noteUnseen(rv *pg_query.RangeVar) {
	if r.cat.unseen(rv.Schemaname, rv.Relname) {
		key := [2]string{rv.Schemaname, rv.Relname}
		if !slices.Contains(r.res.Unseen, key) {
			r.res.Unseen = append(r.res.Unseen, key)
		}
	}
}

// unambiguous refuses an unqualified reference to a name that is masked
// differently in several schemas: the masks applied would be those of one
// of them, the table read the one the session's search_path finds first.
func (r *rewriter) unambiguous(rv *pg_query.RangeVar) {
	if rv.Schemaname == "" && r.cat.ambiguous(rv.Relname) {
		r.res.Touched = true
		refuse("the name %s is masked differently in several schemas: qualify it with its schema", rv.Relname)
	}
}

// utf8Encoding reports whether an encoding name is UTF-8 or SQL_ASCII as
// PostgreSQL spells them (case, dashes and underscores do not matter).
func utf8Encoding(v string) bool {
	v = strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.TrimSpace(v)))
	return v == "utf8" || v == "unicode" || v == "sqlascii"
}

// plpgsqlSQL returns the SQL of a PL/pgSQL function being created, as
// PostgreSQL's own PL/pgSQL parser splits it: each statement, and each
// expression as a SELECT of it (an assignment's right-hand side).
func (r *rewriter) plpgsqlSQL(f *pg_query.CreateFunctionStmt, what, name string) []string {
	text, err := pg_query.Deparse(&pg_query.ParseResult{Version: r.version,
		Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_CreateFunctionStmt{CreateFunctionStmt: f}}}}})
	if err != nil {
		refuse("the body of the %s %s cannot be read: %v", what, name, err)
	}
	out, err := pg_query.ParsePlPgSqlToJSON(text)
	if err != nil {
		refuse("the body of the %s %s cannot be read: %v", what, name, err)
	}
	var tree any
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		refuse("the body of the %s %s cannot be read: %v", what, name, err)
	}
	var texts []string
	var visit func(v any)
	visit = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				visit(e)
			}
		case map[string]any:
			if e, ok := x["PLpgSQL_expr"].(map[string]any); ok {
				q, _ := e["query"].(string)
				mode, _ := e["parseMode"].(float64)
				texts = append(texts, plpgsqlText(q, int(mode), what, name))
			}
			for _, e := range x {
				visit(e)
			}
		}
	}
	visit(tree)
	return texts
}

// plpgsqlText is the SQL a PL/pgSQL expression is checked as, by its parse
// mode (PostgreSQL's RawParseMode): a statement as it is, an expression
// as a SELECT of it, an assignment as a SELECT of its right-hand side.
func plpgsqlText(q string, mode int, what, name string) string {
	switch mode {
	case 0: // RAW_PARSE_DEFAULT
		return q
	case 2: // RAW_PARSE_PLPGSQL_EXPR
		return "SELECT " + q
	case 3, 4, 5: // RAW_PARSE_PLPGSQL_ASSIGN1..3: target := expression
		if i := strings.Index(q, ":="); i >= 0 {
			return "SELECT " + q[i+2:]
		}
		if i := strings.Index(q, "="); i >= 0 {
			return "SELECT " + q[i+1:]
		}
	}
	refuse("the body of the %s %s cannot be read: an expression of an unknown kind", what, name)
	return ""
}
