#!/usr/bin/env node
// Connects with node-postgres (the `pg` package) and prints one JSON object on stdout.
//
// Usage: node client.js [URL] [SQL [PARAMS_JSON]]
//   URL          connection string; default $PG_URL, then $DATABASE_URL
//   SQL          one statement; run with the simple protocol, or with the extended protocol
//                when PARAMS_JSON (a JSON array) is given
// Without SQL it runs a simple query and a parameterised (extended protocol) query.
// Output: {"ok":true,"results":[{"command","rowCount","fields","rows"}]}
// or      {"ok":false,"error":{"message","code","severity"}} with exit code 1.
'use strict';

const { Client } = require('pg');

function summarise(res) {
  return {
    command: res.command,
    rowCount: res.rowCount,
    fields: res.fields.map((f) => f.name),
    rows: res.rows,
  };
}

async function main() {
  const url = process.argv[2] || process.env.PG_URL || process.env.DATABASE_URL;
  if (!url) throw new Error('no connection string: pass it as the first argument or set PG_URL');
  const sql = process.argv[3];
  const params = process.argv[4] ? JSON.parse(process.argv[4]) : undefined;

  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10000 });
  await client.connect();
  try {
    const results = [];
    if (sql) {
      results.push(summarise(await client.query(sql, params)));
    } else {
      results.push(summarise(await client.query('SELECT 1 AS one, current_user AS usr')));
      results.push(summarise(await client.query(
        'SELECT $1::int + 1 AS next, $2::text AS echo', [41, 'hello'])));
    }
    return results;
  } finally {
    await client.end();
  }
}

main().then(
  (results) => {
    process.stdout.write(JSON.stringify({ ok: true, results }) + '\n');
  },
  (err) => {
    process.stdout.write(JSON.stringify({
      ok: false,
      error: { message: err.message, code: err.code, severity: err.severity },
    }) + '\n');
    process.exitCode = 1;
  },
);
