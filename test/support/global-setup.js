// Runs once before all test files: finds a PostgreSQL (DATABASE_URL's server, else an embedded one
// started for this run) and builds a template database with the production migrations, from which
// every test file clones its own database. Uses the compiled service (npm test builds first).
const { chmodSync, mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { Client } = require('pg');
const { EmbeddedDatabase } = require('../../dist/persistence/embedded-database');
const { runMigrations } = require('../../dist/persistence/data-source');

function withDatabase(url, database) {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
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
  process.env.TEST_PG_ADMIN_URL = adminUrl;
  process.env.TEST_PG_TEMPLATE = template;
  // Test files must not pick up the shared server's URL by accident: they get their own database.
  delete process.env.DATABASE_URL;
};
