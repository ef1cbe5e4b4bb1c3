const { rmSync } = require('node:fs');
const { dirname } = require('node:path');
const { Client } = require('pg');

module.exports = async function globalTeardown() {
  const admin = new Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${process.env.TEST_PG_TEMPLATE} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  if (process.env.TEST_OPENAPI_DOCUMENT) {
    rmSync(dirname(process.env.TEST_OPENAPI_DOCUMENT), { recursive: true, force: true });
  }
  if (globalThis.__EMBEDDED_PG__) await globalThis.__EMBEDDED_PG__.stop();
};
