package analysis

import (
	"hash/fnv"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgproxy/pgproxy/userspace/metadata"
	"github.com/pgproxy/pgproxy/userspace/sqlparse"
)

// fuzzFacts knows the fixture's tables and makes up facts for any other
// name (none, a view, a big table with or without columns and with odd
// indexes), so that every path of the rules is reachable.
func fuzzFacts() func(schema, name string) *metadata.Table {
	known := fixture()
	return func(schema, name string) *metadata.Table {
		if t := known[sqlparse.TableRef{Schema: schema, Name: name}]; t != nil {
			return t
		}
		h := fnv.New32a()
		h.Write([]byte(schema + "." + name))
		switch h.Sum32() % 4 {
		case 0:
			return nil
		case 1:
			return &metadata.Table{Schema: schema, Name: name, Kind: 'v', Rows: -1}
		case 2:
			return &metadata.Table{Schema: schema, Name: name, Kind: 'r', Rows: 5e6,
				Indexes: []metadata.Index{{Name: "i", Columns: nil, Method: "btree"}, {Name: "j", Columns: []string{"a", ""}, Method: "gist"}}}
		}
		return &metadata.Table{Schema: schema, Name: name, Kind: 'p', Rows: 3e6,
			Indexes: []metadata.Index{btree("k", "a"), btree("l", "b", "c")},
			Columns: columns("a int4", "b text", "c timestamptz", "d")}
	}
}

// FuzzCheck: the rules never panic on a tree pg_query produces (Check
// would recover, so the fuzzer calls check directly), and neither do the
// sqlparse helpers the caller runs before them.
func FuzzCheck(f *testing.F) {
	for _, c := range ruleCases {
		f.Add(c.sql)
	}
	facts := fuzzFacts()
	tiny := Rules{Thresholds: Thresholds{MaxRows: 1, MaxOffset: 1}} // every table is big
	f.Fuzz(func(t *testing.T, sql string) {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return
		}
		Rules{}.check(tree, facts)
		tiny.check(tree, facts)
		tiny.check(tree, nil)
		sqlparse.Tables(tree)
		for _, raw := range tree.Stmts {
			sqlparse.ClassifyRead(raw.Stmt)
		}
	})
}
