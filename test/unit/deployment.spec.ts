import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/** No Docker engine or cluster runs here, so the manifests are checked by reading them. */
const root = join(__dirname, '..', '..');
type Doc = Record<string, any>;

const k8sDocs: Doc[] = readdirSync(join(root, 'deploy', 'k8s'))
  .filter((file) => file.endsWith('.yaml'))
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(root, 'deploy', 'k8s', file), 'utf8')).map(
      (doc) => doc.toJS() as Doc,
    ),
  );
const find = (kind: string, name: string): Doc => {
  const doc = k8sDocs.find((candidate) => candidate.kind === kind && candidate.metadata?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return doc;
};
const container = (doc: Doc): Doc =>
  (doc.spec.template ?? doc.spec.jobTemplate.spec.template).spec.containers[0];
const appRole = (doc: Doc): string => container(doc).env.find((env: Doc) => env.name === 'APP_ROLE').value;

describe('Kubernetes manifests', () => {
  it('run every role from the same image', () => {
    const images = ['job-service-api', 'job-service-worker'].map(
      (name) => container(find('Deployment', name)).image,
    );
    images.push(container(find('Job', 'job-service-migrate')).image);
    expect(new Set(images).size).toBe(1);
    expect(appRole(find('Deployment', 'job-service-api'))).toBe('api');
    expect(appRole(find('Deployment', 'job-service-worker'))).toBe('worker');
    expect(appRole(find('Job', 'job-service-migrate'))).toBe('migrate');
  });

  it('probe the health endpoints and expose the API through a Service and an HPA', () => {
    for (const name of ['job-service-api', 'job-service-worker']) {
      const probes = container(find('Deployment', name));
      expect(probes.readinessProbe.httpGet.path).toBe('/health/ready');
      expect(probes.livenessProbe.httpGet.path).toBe('/health/live');
    }
    expect(find('Service', 'job-service-api').spec.selector).toEqual(
      find('Deployment', 'job-service-api').spec.selector.matchLabels,
    );
    expect(find('HorizontalPodAutoscaler', 'job-service-api').spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: 'job-service-api',
    });
  });

  it('give workers a termination grace period longer than SHUTDOWN_GRACE_MS', () => {
    const graceMs = Number(find('ConfigMap', 'job-service').data.SHUTDOWN_GRACE_MS);
    const podGraceMs =
      find('Deployment', 'job-service-worker').spec.template.spec.terminationGracePeriodSeconds * 1000;
    expect(podGraceMs).toBeGreaterThan(graceMs);
  });

  it('scale workers with KEDA on the number of claimable jobs', () => {
    const scaled = find('ScaledObject', 'job-service-worker');
    expect(scaled.spec.scaleTargetRef.name).toBe('job-service-worker');
    const [trigger] = scaled.spec.triggers;
    expect(trigger.type).toBe('postgresql');
    expect(trigger.metadata.query).toMatch(
      /FROM jobs WHERE available_at IS NOT NULL AND available_at <= now\(\)/,
    );
    expect(
      find('TriggerAuthentication', trigger.authenticationRef.name).spec.secretTargetRef[0].parameter,
    ).toBe('connection');
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8')) as Doc;

  it('runs PostgreSQL, a migration step, the API and two workers', () => {
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual(['api', 'migrate', 'postgres', 'worker']);
    expect(services.migrate.environment.APP_ROLE).toBe('migrate');
    expect(services.api.environment.APP_ROLE).toBe('api');
    expect(services.worker.environment.APP_ROLE).toBe('worker');
    expect(services.worker.deploy.replicas).toBe(2);
  });

  it('starts the API and workers only after the migration succeeded, and gives workers time to drain', () => {
    const { services } = compose;
    expect(services.migrate.depends_on.postgres.condition).toBe('service_healthy');
    for (const name of ['api', 'worker']) {
      expect(services[name].depends_on.migrate.condition).toBe('service_completed_successfully');
    }
    expect(parseInt(services.worker.stop_grace_period, 10) * 1000).toBeGreaterThan(
      Number(services.worker.environment.SHUTDOWN_GRACE_MS),
    );
  });
});
