package masking

import (
	"regexp"
	"slices"
	"strings"
)

// deniedFunctions are built-in and extension functions that read what the
// rewriter cannot mask: SQL given as text, tables named by a string, server
// files, raw pages, statistics samples and other databases.
var deniedFunctions = map[string]string{
	"query_to_xml": "it runs SQL given as text", "query_to_xml_and_xmlschema": "it runs SQL given as text",
	"query_to_xmlschema": "it runs SQL given as text", "cursor_to_xml": "it reads a cursor the proxy cannot see",
	"cursor_to_xmlschema": "it reads a cursor the proxy cannot see", "table_to_xml": "it reads a table named by a string",
	"table_to_xml_and_xmlschema": "it reads a table named by a string", "table_to_xmlschema": "it reads a table named by a string",
	"schema_to_xml": "it reads every table of a schema", "schema_to_xml_and_xmlschema": "it reads every table of a schema",
	"schema_to_xmlschema": "it reads every table of a schema", "database_to_xml": "it reads every table of the database",
	"database_to_xml_and_xmlschema": "it reads every table of the database", "database_to_xmlschema": "it reads every table of the database",
	"ts_stat": "it runs SQL given as text", "connectby": "it reads a table named by a string",
	"pg_read_file": "it reads server files", "pg_read_binary_file": "it reads server files", "pg_ls_dir": "it reads server directories",
	"pg_stat_file": "it reads server files", "pg_file_write": "it writes server files", "pg_file_rename": "it changes server files",
	"pg_file_unlink": "it changes server files", "pg_file_sync": "it changes server files", "pg_logdir_ls": "it reads server directories",
	"lo_import": "it reads server files", "lo_export": "it writes server files",
	"get_raw_page": "it reads raw table pages", "heap_page_items": "it reads raw table pages", "heap_page_item_attrs": "it reads raw table pages",
	"tuple_data_split": "it reads raw table pages", "page_header": "it reads raw table pages", "bt_page_items": "it reads raw index pages",
	"brin_page_items": "it reads raw index pages", "gin_leafpage_items": "it reads raw index pages", "hash_page_items": "it reads raw index pages",
	"gist_page_items": "it reads raw index pages", "fsm_page_contents": "it reads raw pages", "bt_multi_page_stats": "it reads raw index pages",
	"pg_mcv_list_items": "it shows sampled column values", "pg_stats_ext_mcvlist_items": "it shows sampled column values",
	"pg_stat_statements": "it shows statement texts", "pg_stat_statements_info": "it shows statement texts",
}

// deniedPrefixes are function families refused by the start of their name.
var deniedPrefixes = map[string]string{
	"dblink":   "it runs SQL on another connection",
	"crosstab": "it runs SQL given as text",
	"pg_ls_":   "it reads server directories",
}

// deniedFunction returns why a function is refused whatever its arguments,
// or "".
func deniedFunction(name string) string {
	if r := deniedFunctions[name]; r != "" {
		return r
	}
	for p, r := range deniedPrefixes {
		if r != "" && strings.HasPrefix(name, p) {
			return r
		}
	}
	return ""
}

// bodyDenied finds, in a PL/pgSQL body being created or the body of a
// function the catalog lists, the name of a denied function, family or
// relation, of ts_rewrite (its query form runs SQL given as text), and of
// what changes how the server reads statement text (set_config,
// standard_conforming_strings, client_encoding): the body runs unseen, and
// a name can be built at run time, so a name is enough to refuse it.
var bodyDenied = func() *regexp.Regexp {
	var names []string
	for n := range deniedFunctions {
		names = append(names, regexp.QuoteMeta(n))
	}
	for n := range deniedRelations {
		names = append(names, regexp.QuoteMeta(n))
	}
	for p := range deniedPrefixes {
		names = append(names, regexp.QuoteMeta(p)+`\w*`)
	}
	names = append(names, "ts_rewrite", "set_config", "standard_conforming_strings", "client_encoding")
	slices.Sort(names)
	return regexp.MustCompile(`(?i)(^|[^\w$])(` + strings.Join(names, "|") + `)($|[^\w$])`)
}()

// setNames finds SET NAMES (client_encoding under another name) in the
// body of a function the catalog lists, comments or not between the words.
var setNames = regexp.MustCompile(`(?is)(^|[^\w$])set([^\w$].{0,200}?)?[^\w$]names($|[^\w$])`)

// deniedRelations are catalog and statistics relations that show column
// values (statistics samples: most common values, histograms).
var deniedRelations = map[string]string{
	"pg_stats": "it shows sampled column values", "pg_statistic": "it shows sampled column values",
	"pg_stats_ext": "it shows sampled column values", "pg_stats_ext_exprs": "it shows sampled column values",
	"pg_statistic_ext_data": "it shows sampled column values", "pg_stat_statements": "it shows statement texts",
}

// keyExposing are relations and functions that show the text of the
// session's own (rewritten) statements, which carries the keyed hash's
// padded key: refused when an hmac mask is configured.
var keyExposing = map[string]bool{
	"pg_stat_activity": true, "pg_stat_get_activity": true, "current_query": true, "pg_stat_get_backend_activity": true,
	"pg_prepared_statements": true, "pg_cursors": true, "pg_get_viewdef": true, "pg_get_ruledef": true,
	"pg_prepared_statement": true, "pg_cursor": true,
	"pg_views": true, "pg_matviews": true, "pg_rules": true, "views": true, "pg_stat_statements": true,
}

// statementSettings finds, in a function body, what changes the settings
// that send statement texts or trees to the client.
var statementSettings = regexp.MustCompile(`(?i)\b(debug_print_\w+|client_min_messages|set_config)\b`)

// showsStatements reports whether a setting can make the server send the
// session's statements (their text in the statement log, or their parse
// and plan trees) to the client.
func showsStatements(name string) bool {
	name = strings.ToLower(name)
	return strings.HasPrefix(name, "debug_print_") || name == "client_min_messages"
}

// statementShowing reports whether a value of such a setting sends them:
// any debug_print_* value but off, and client_min_messages at log or a
// debug level (the server's log_statement and log_min_duration_statement
// lines, and the debug_print trees, are sent at LOG).
func statementShowing(name, value string) bool {
	name, value = strings.ToLower(name), strings.ToLower(strings.TrimSpace(value))
	if strings.HasPrefix(name, "debug_print_") {
		switch value {
		case "off", "false", "no", "0", "of", "fa", "fal", "fals":
			return false
		}
		return true
	}
	return value == "log" || strings.HasPrefix(value, "debug")
}
