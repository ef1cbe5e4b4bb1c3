#!/usr/bin/env node
/**
 * Writes into deploy/k8s what has its one source elsewhere, so that the manifests cannot drift from it:
 * - KEDA's query: WORKER_DEMAND of src/persistence/job.sql.ts (the claim's own definition of due work);
 * - KEDA's target per worker: WORKER_CONCURRENCY of config.yaml;
 * - the image of every workload, and the migration Job's name, which carries the image's tag.
 *
 *   npm run k8s:render                                        # after changing the SQL or WORKER_CONCURRENCY
 *   npm run k8s:render -- --image registry.example.com/job-service:1.4.2
 *
 * test/unit/deployment.spec.ts renders the committed files again and fails unless nothing changes.
 */
const { readFileSync, readdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Scalar, parseAllDocuments } = require('yaml');

const MIGRATE_JOB_PREFIX = 'job-service-migrate-';

/** `registry/name:1.4.2` -> `1-4-2`; a digest gives its first 12 hex digits; no tag means `latest`. */
function imageVersion(image) {
  const digest = /@sha256:([0-9a-f]{12})/.exec(image);
  if (digest) return digest[1];
  const lastSlash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  const tag = colon > lastSlash ? image.slice(colon + 1) : 'latest';
  const slug = tag
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, 63 - MIGRATE_JOB_PREFIX.length).replace(/-+$/, '') || 'latest';
}

/** The pod templates of the workloads in `doc`, if any. */
function podSpecOf(doc) {
  const kind = doc.get('kind');
  if (kind === 'Deployment' || kind === 'Job') return doc.getIn(['spec', 'template', 'spec']);
  return undefined;
}

/**
 * Renders `files` ({ name: yaml text }) and returns them ({ name: yaml text }). `image` left out keeps the
 * image the api Deployment has now.
 */
function renderManifests(files, { workerDemandSql, image }) {
  const parsed = Object.fromEntries(
    Object.entries(files).map(([name, text]) => [name, parseAllDocuments(text)]),
  );
  const docs = Object.values(parsed).flat();
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0].message}`);
  }
  const find = (kind, name) =>
    docs.find((doc) => doc.get('kind') === kind && doc.getIn(['metadata', 'name']) === name);
  const configMap = find('ConfigMap', 'job-service');
  const scaledObject = find('ScaledObject', 'job-service-worker');
  const api = find('Deployment', 'job-service-api');
  if (!configMap || !scaledObject || !api)
    throw new Error('deploy/k8s lacks the ConfigMap, the ScaledObject or the api');

  const query = new Scalar(workerDemandSql.trim());
  query.type = Scalar.BLOCK_LITERAL;
  scaledObject.setIn(['spec', 'triggers', 0, 'metadata', 'query'], query);
  const concurrency = String(configMap.getIn(['data', 'WORKER_CONCURRENCY']));
  const target = new Scalar(concurrency);
  target.type = Scalar.QUOTE_DOUBLE;
  scaledObject.setIn(['spec', 'triggers', 0, 'metadata', 'targetQueryValue'], target);

  const wanted = image ?? api.getIn(['spec', 'template', 'spec', 'containers', 0, 'image']);
  for (const doc of docs) {
    const podSpec = podSpecOf(doc);
    if (!podSpec) continue;
    for (const container of podSpec.get('containers').items) container.set('image', wanted);
    if (doc.get('kind') === 'Job' && String(doc.getIn(['metadata', 'name'])).startsWith(MIGRATE_JOB_PREFIX)) {
      doc.setIn(['metadata', 'name'], MIGRATE_JOB_PREFIX + imageVersion(wanted));
    }
  }
  return Object.fromEntries(
    Object.entries(parsed).map(([name, fileDocs]) => [
      name,
      fileDocs.map((doc) => doc.toString({ lineWidth: 0 })).join(''),
    ]),
  );
}

function main() {
  const args = process.argv.slice(2);
  const imageAt = args.indexOf('--image');
  const image = imageAt >= 0 ? args[imageAt + 1] : undefined;
  if (imageAt >= 0 && !/^[a-z0-9][^\s]*$/i.test(image ?? '')) {
    throw new Error('--image needs an image reference, e.g. --image registry.example.com/job-service:1.4.2');
  }
  const { WORKER_DEMAND } = require(join(__dirname, '..', 'dist', 'persistence', 'job.sql.js'));
  const folder = join(__dirname, '..', 'deploy', 'k8s');
  const names = readdirSync(folder).filter((name) => name.endsWith('.yaml'));
  const files = Object.fromEntries(names.map((name) => [name, readFileSync(join(folder, name), 'utf8')]));
  const rendered = renderManifests(files, { workerDemandSql: WORKER_DEMAND, image });
  for (const name of names) {
    if (rendered[name] !== files[name]) {
      writeFileSync(join(folder, name), rendered[name]);
      process.stdout.write(`rendered deploy/k8s/${name}\n`);
    }
  }
}

if (require.main === module) {
  try {
    main();
  } catch (error) {
    process.stderr.write(`k8s:render: ${error.message}\n`);
    process.exit(1);
  }
}

module.exports = { renderManifests, imageVersion };
