#!/usr/bin/env node
/**
 * Where the hot path's statements spend their time: `npm run bench:statements` (builds first). Claims and
 * completes --rounds batches of --batch noop jobs with the service's own SQL under EXPLAIN ANALYZE, and
 * prints the median execution time of each statement and of each trigger that fires in it (the database's
 * rules and its maintained counters). Shares of one statement's time move far less between machines than
 * absolute times do. Uses DATABASE_URL's server if set (in a database of its own, dropped at the end), else
 * an embedded PostgreSQL with stock settings.
 */
const { Client } = require('pg');
const SQL = require('../dist/persistence/job.sql');
const { runMigrations } = require('../dist/persistence/data-source');
const { log, createDatabase, numberOption, scratchServer } = require('./support');

const ROUNDS = numberOption('rounds', 40);
const BATCH = numberOption('batch', 100);

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function profile(url) {
  const client = new Client({ connectionString: url });
  await client.connect();
  const times = new Map();
  const record = (key, ms) => times.set(key, [...(times.get(key) ?? []), ms]);
  const explain = async (statement, sql, params) => {
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
    const [plan] = rows[0]['QUERY PLAN'];
    record(statement, plan['Execution Time']);
    for (const trigger of plan.Triggers ?? [])
      record(`${statement}: trigger ${trigger['Trigger Name']}`, trigger.Time);
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      await client.query(
        `INSERT INTO jobs (job_id, job_type, payload, run_at, available_at, max_attempts, timeout_ms)
         SELECT job_id_v7(), 'noop', '{}', now(), now(), 3, 60000 FROM generate_series(1, $1)`,
        [BATCH],
      );
      await client.query('BEGIN');
      await explain(`claim of ${BATCH}`, SQL.CLAIM_DUE, [BATCH, 'profile', 30_000, ['noop']]);
      const { rows } = await client.query(`SELECT job_id, attempts FROM jobs WHERE state = 'running'`);
      const done = JSON.stringify(
        rows.map((row) => ({ job_id: row.job_id, attempt: row.attempts, result: {} })),
      );
      await explain(`completion of ${BATCH}`, SQL.MARK_COMPLETED, ['profile', done]);
      await client.query('COMMIT');
    }
  } finally {
    await client.end();
  }
  return times;
}

async function main() {
  const server = await scratchServer('profile');
  const database = await createDatabase(server.url, `statement_profile_${process.pid}`);
  try {
    await runMigrations(database.url);
    const times = await profile(database.url);
    const totals = new Map(
      [...times].filter(([key]) => !key.includes(': ')).map(([key, v]) => [key, median(v)]),
    );
    for (const [key, values] of times) {
      const statement = key.split(': ')[0];
      const share = key.includes(': ')
        ? ` (${((100 * median(values)) / totals.get(statement)).toFixed(1)}% of the statement)`
        : '';
      process.stdout.write(`${key.padEnd(52)} median ${median(values).toFixed(3)} ms${share}\n`);
    }
    log(`${ROUNDS} rounds; EXPLAIN ANALYZE's own timing overhead is included in every figure`);
  } finally {
    await database.drop().catch(() => undefined);
    await server.stop();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    log(error.stack ?? String(error));
    process.exit(1);
  },
);
