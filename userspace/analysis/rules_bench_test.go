package analysis

import "testing"

// benchStatements are shapes of the kind the proxy sees: a lookup by key,
// a join with a subquery and a CTE, and one that fires.
var benchStatements = map[string]string{
	"key_lookup": "SELECT id, email, name FROM customers WHERE id = $1",
	"join_cte_subquery": `WITH recent AS (SELECT customer_id, max(created_at) AS last FROM orders
		WHERE created_at > now() - interval '7 days' GROUP BY customer_id)
		SELECT c.id, c.email, r.last, (SELECT count(*) FROM orders o WHERE o.customer_id = c.id)
		FROM customers c JOIN recent r ON r.customer_id = c.id
		WHERE c.country = $1 AND c.id NOT IN (SELECT customer_id FROM orders WHERE status = 'void')
		ORDER BY r.last DESC LIMIT 50`,
	"fires_leading_wildcard": "SELECT * FROM customers c WHERE c.name ILIKE '%' || $1 || '%' ORDER BY c.name",
}

func BenchmarkCheck(b *testing.B) {
	facts := factsOf(fixture())
	for name, sql := range benchStatements {
		tree := parse(b, sql)
		b.Run(name, func(b *testing.B) {
			r := Rules{}
			b.ReportAllocs()
			for b.Loop() {
				r.Check(tree, facts)
			}
		})
	}
}
