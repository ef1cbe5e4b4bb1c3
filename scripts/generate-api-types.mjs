// Prints the TypeScript types of the API that openapi-typescript generates from an OpenAPI document (a
// file, or the URL of a running service's /docs-json), formatted as the project formats its code:
//   node scripts/generate-api-types.mjs http://localhost:3000/docs-json > client.ts
// test/e2e/api-client.spec.ts keeps test/support/generated/job-service-api.ts equal to its output.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import { format, resolveConfig } from 'prettier';
import ts from 'typescript';

const JSON_VALUE_TYPES = ['object', 'array', 'string', 'number', 'boolean'];

/** The `anyOf` the document spells "any JSON value" with (a job's result). */
function isAnyJsonValue(schema) {
  const types = (schema.anyOf ?? []).map((alternative) => alternative.type);
  return types.length === JSON_VALUE_TYPES.length && JSON_VALUE_TYPES.every((type) => types.includes(type));
}

const source = process.argv[2];
if (!source) {
  process.stderr.write('usage: node scripts/generate-api-types.mjs <openapi.json | http://host/docs-json>\n');
  process.exit(2);
}
const text = /^https?:/.test(source)
  ? await (await globalThis.fetch(source)).text()
  : await readFile(source, 'utf8');
const ast = await openapiTS(JSON.parse(text), {
  // A field with a default is optional to send: the service fills it in.
  defaultNonNullable: false,
  // Any JSON value becomes `any`, as JSON.parse gives it: a job's result has the shape of its job type,
  // which the client knows and the document cannot, so `job.result?.slept_ms` reads without a cast.
  transform: (schema) =>
    isAnyJsonValue(schema) ? ts.factory.createKeywordTypeNode(ts.SyntaxKind.AnyKeyword) : undefined,
});
const header =
  '// Generated from the OpenAPI document at /docs-json by openapi-typescript: do not edit.\n' +
  '// Regenerate with `npm run api:types`; test/e2e/api-client.spec.ts fails while it is out of date.\n';
const filepath = fileURLToPath(new URL('../test/support/generated/job-service-api.ts', import.meta.url));
process.stdout.write(
  await format(header + astToString(ast), { ...(await resolveConfig(filepath)), filepath }),
);
