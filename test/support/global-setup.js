// Runs once before all test files: finds a PostgreSQL (DATABASE_URL's server, else an embedded one
// started for this run) and builds a template database with the production migrations, from which
// every test file clones its own database. Uses the compiled service (npm test builds first).
const { chmodSync, mkdtempSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { Client } = require('pg');
const { EmbeddedDatabase } = require('../../dist/persistence/embedded-database');
const { runMigrations } = require('../../dist/persistence/data-source');
const { createApp } = require('../../dist/app.factory');
const { loadConfig } = require('../../dist/config/app-config');
const { createLogger } = require('../../dist/logging/logger');

function withDatabase(url, database) {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * The OpenAPI document as an api process serves it at /docs-json, saved to a file: every test file checks
 * the responses it receives against it (test/support/contract-setup.ts). The api runs on a database of
 * its own, so that the template has no connection when test files clone it.
 */
async function fetchServedDocument(adminUrl, template) {
  const database = `job_service_openapi_${process.pid}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${database} TEMPLATE ${template}`);
  const config = {
    ...loadConfig({ DATABASE_URL: withDatabase(adminUrl, database), APP_ROLE: 'api', LOG_LEVEL: 'silent' }),
    migrateOnStart: false,
  };
  const app = await createApp(config, createLogger('silent'));
  try {
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address();
    const response = await fetch(`http://127.0.0.1:${port}/docs-json`);
    if (response.status !== 200) throw new Error(`GET /docs-json answered ${response.status}`);
    const file = join(mkdtempSync(join(tmpdir(), 'job-service-openapi-')), 'openapi.json');
    writeFileSync(file, await response.text());
    return file;
  } finally {
    await app.close();
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
}

async function adminQuery(adminUrl, sql) {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

module.exports = async function globalSetup() {
  let adminUrl;
  if (process.env.DATABASE_URL) {
    adminUrl = withDatabase(process.env.DATABASE_URL, 'postgres');
  } else {
    const parent = mkdtempSync(join(tmpdir(), 'job-service-test-'));
    chmodSync(parent, 0o755); // as root the server runs as `postgres`, which must be able to enter it
    const dataDir = join(parent, 'postgres');
    const embedded = await EmbeddedDatabase.start({ dataDir, ephemeral: true });
    globalThis.__EMBEDDED_PG__ = embedded;
    adminUrl = embedded.adminUrl;
  }
  const template = `job_service_template_${process.pid}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  await runMigrations(withDatabase(adminUrl, template));
  process.env.TEST_OPENAPI_DOCUMENT = await fetchServedDocument(adminUrl, template);
  process.env.TEST_PG_ADMIN_URL = adminUrl;
  process.env.TEST_PG_TEMPLATE = template;
  // Test files must not pick up the shared server's URL by accident: they get their own database.
  delete process.env.DATABASE_URL;
};
