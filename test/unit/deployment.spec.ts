import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/app-config';
import { DATABASE_CHECK_TIMEOUT_MS } from '../../src/health/readiness-limits';
import { CLAIM_DUE, COUNT_DUE_WITHOUT_HANDLER, DUE, WORKER_DEMAND } from '../../src/persistence/job.sql';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { renderManifests, imageVersion } = require('../../scripts/render-k8s.js') as {
  renderManifests: (
    files: Record<string, string>,
    options: { workerDemandSql: string; image?: string },
  ) => Record<string, string>;
  imageVersion: (image: string) => string;
};

/** No Docker engine or cluster runs here: the manifests are checked against the API schemas and each other. */
const root = join(__dirname, '..', '..');
const k8sFolder = join(root, 'deploy', 'k8s');
type Doc = Record<string, any>;

const files: Record<string, string> = Object.fromEntries(
  readdirSync(k8sFolder)
    .filter((file) => file.endsWith('.yaml'))
    .map((file) => [file, readFileSync(join(k8sFolder, file), 'utf8')]),
);
const k8sDocs: Doc[] = Object.values(files).flatMap((text) =>
  parseAllDocuments(text).map((doc) => doc.toJS() as Doc),
);
const find = (kind: string, name: string): Doc => {
  const doc = k8sDocs.find((candidate) => candidate.kind === kind && candidate.metadata?.name === name);
  if (!doc) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return doc;
};
const ofKind = (kind: string): Doc[] => k8sDocs.filter((doc) => doc.kind === kind);
const podSpec = (doc: Doc): Doc => doc.spec.template.spec;
const container = (doc: Doc): Doc => podSpec(doc).containers[0];
const workloads = (): Doc[] => [...ofKind('Deployment'), ...ofKind('Job')];
const configMap = (): Record<string, string> => find('ConfigMap', 'job-service').data;
const migrateJob = (): Doc => {
  const [job] = ofKind('Job');
  expect(ofKind('Job')).toHaveLength(1);
  return job;
};
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

/**
 * The environment a container's process sees: the ConfigMap's values, overridden by its own `env`, with
 * `$(NAME)` references to earlier entries resolved as the kubelet does; secrets appear as `secret.<name>.<key>`.
 */
function environment(doc: Doc): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container(doc).envFrom ?? [])
    Object.assign(env, find('ConfigMap', source.configMapRef.name).data);
  for (const entry of container(doc).env ?? []) {
    if (entry.valueFrom) {
      const ref = entry.valueFrom.secretKeyRef;
      env[entry.name] = `secret.${ref.name}.${ref.key}`;
      continue;
    }
    env[entry.name] = String(entry.value).replace(/\$\(([A-Z_]+)\)/g, (_, name: string) => {
      if (!(name in env))
        throw new Error(`${entry.name} refers to $(${name}), which is not defined before it`);
      return env[name];
    });
  }
  return env;
}
/** The app's configuration in a container, with its defaults (production, as in the image). */
const appConfig = (doc: Doc) =>
  loadConfig({ NODE_ENV: 'production', AUTH_DISABLED: 'true', ...environment(doc), API_KEYS: '' });

/** The JSON schema of each kind, from the Kubernetes (and KEDA) OpenAPI definitions, compiled with ajv. */
const schemas: Record<string, new (data: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};
/** CloudNativePG publishes no schema package; its resources are checked by the consistency tests below. */
const WITHOUT_SCHEMA = ['postgresql.cnpg.io/v1/Cluster', 'postgresql.cnpg.io/v1/Pooler'];

function schemaErrors(doc: Doc): string | undefined {
  const Model = schemas[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) return `no schema for ${doc.apiVersion} ${doc.kind}`;
  try {
    new Model(doc).validate();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

describe('Kubernetes manifests: API schemas', () => {
  it('validate every resource against its schema', () => {
    const kinds = new Set(k8sDocs.map((doc) => `${doc.apiVersion}/${doc.kind}`));
    for (const kind of kinds) expect([...Object.keys(schemas), ...WITHOUT_SCHEMA]).toContain(kind);
    for (const doc of k8sDocs) {
      if (WITHOUT_SCHEMA.includes(`${doc.apiVersion}/${doc.kind}`)) continue;
      expect({ resource: `${doc.kind} ${doc.metadata.name}`, errors: schemaErrors(doc) }).toEqual({
        resource: `${doc.kind} ${doc.metadata.name}`,
        errors: undefined,
      });
    }
  });

  it('refuse resources that break their schema', () => {
    const deployment = structuredClone(find('Deployment', 'job-service-api'));
    deployment.spec.replicas = 'two';
    delete podSpec(deployment).containers[0].name;
    expect(schemaErrors(deployment)).toMatch(/replicas must be integer.*must have required property name/);
    const budget = structuredClone(find('PodDisruptionBudget', 'job-service-worker'));
    budget.spec.unhealthyPodEvictionPolicy = 'Sometimes';
    expect(schemaErrors(budget)).toMatch(
      /unhealthyPodEvictionPolicy must be equal to one of the allowed values/,
    );
    const scaled = structuredClone(find('ScaledObject', 'job-service-worker'));
    scaled.spec.triggers = scaled.spec.triggers[0];
    expect(schemaErrors(scaled)).toMatch(/triggers must be array/);
  });
});

describe('Kubernetes manifests: consistency', () => {
  it('run every role from the same image', () => {
    const images = workloads().flatMap((doc) => podSpec(doc).containers.map((c: Doc) => c.image));
    expect(new Set(images).size).toBe(1);
    expect(images[0]).not.toMatch(/:latest$|^[^:]+$/);
    expect(environment(find('Deployment', 'job-service-api')).APP_ROLE).toBe('api');
    expect(environment(find('Deployment', 'job-service-worker')).APP_ROLE).toBe('worker');
    expect(environment(migrateJob()).APP_ROLE).toBe('migrate');
  });

  it('start only with a valid configuration of the app', () => {
    for (const doc of workloads()) expect(() => appConfig(doc)).not.toThrow();
  });

  it('probe the health endpoints, waiting longer than the checks themselves, and expose the API through a Service and an HPA', () => {
    for (const name of ['job-service-api', 'job-service-worker']) {
      const deployment = find('Deployment', name);
      const probes = container(deployment);
      expect(probes.readinessProbe.httpGet.path).toBe('/health/ready');
      expect(probes.livenessProbe.httpGet.path).toBe('/health/live');
      expect(probes.startupProbe.httpGet.path).toBe('/health/live');
      // A probe that gives up first would report a failure where the check would have answered.
      expect(probes.readinessProbe.timeoutSeconds * 1000).toBeGreaterThan(DATABASE_CHECK_TIMEOUT_MS);
      expect(probes.livenessProbe.timeoutSeconds).toBeGreaterThanOrEqual(
        probes.readinessProbe.timeoutSeconds,
      );
      // Start-up waits for the database before it listens: liveness must not restart it meanwhile.
      const startupWindowMs = probes.startupProbe.periodSeconds * probes.startupProbe.failureThreshold * 1000;
      expect(startupWindowMs).toBeGreaterThan(appConfig(deployment).dbConnectRetryMs);
    }
    expect(find('Service', 'job-service-api').spec.selector).toEqual(
      find('Deployment', 'job-service-api').spec.selector.matchLabels,
    );
    expect(find('HorizontalPodAutoscaler', 'job-service-api').spec.scaleTargetRef).toMatchObject({
      kind: 'Deployment',
      name: 'job-service-api',
    });
  });

  it('leave the replica count to the autoscaler that owns each Deployment', () => {
    const owned = [
      ...ofKind('HorizontalPodAutoscaler').map((hpa) => hpa.spec.scaleTargetRef.name),
      ...ofKind('ScaledObject').map((scaled) => scaled.spec.scaleTargetRef.name),
    ];
    expect(owned.sort()).toEqual(
      ofKind('Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    );
    for (const deployment of ofKind('Deployment')) expect(deployment.spec).not.toHaveProperty('replicas');
  });

  it('cover each Deployment with a PodDisruptionBudget that selects its pods and no others', () => {
    for (const deployment of ofKind('Deployment')) {
      const labels = deployment.spec.template.metadata.labels;
      const budgets = ofKind('PodDisruptionBudget').filter((budget) =>
        Object.entries(budget.spec.selector.matchLabels).every(([key, value]) => labels[key] === value),
      );
      expect({ deployment: deployment.metadata.name, budgets: budgets.length }).toEqual({
        deployment: deployment.metadata.name,
        budgets: 1,
      });
      expect(budgets[0].spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
      expect(budgets[0].spec.maxUnavailable).toBe(1);
      // A pod that is not ready serves nothing; keeping it would block every node drain.
      expect(budgets[0].spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
    }
  });

  it('pass Pod Security "restricted", with a read-only root filesystem', () => {
    const allowedVolumes = [
      'configMap',
      'csi',
      'downwardAPI',
      'emptyDir',
      'ephemeral',
      'persistentVolumeClaim',
      'projected',
      'secret',
    ];
    for (const doc of workloads()) {
      const pod = podSpec(doc);
      const where = `${doc.kind} ${doc.metadata.name}`;
      expect({ where, hostNetwork: pod.hostNetwork, hostPID: pod.hostPID, hostIPC: pod.hostIPC }).toEqual({
        where,
      });
      for (const volume of pod.volumes ?? []) {
        const types = Object.keys(volume).filter((key) => key !== 'name');
        for (const type of types) expect(allowedVolumes).toContain(type);
      }
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(pod.securityContext.seccompProfile.type).toBe('RuntimeDefault');
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
        expect(c.securityContext.privileged).toBeFalsy();
        expect(c.securityContext.capabilities.add ?? []).toEqual([]);
        expect(c.securityContext.runAsUser ?? pod.securityContext.runAsUser).not.toBe(0);
        for (const port of c.ports ?? []) expect(port.hostPort).toBeUndefined();
        // Node writes temporary files under /tmp only; it is the one writable place.
        expect(c.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
      }
      expect(pod.volumes).toEqual([{ name: 'tmp', emptyDir: { sizeLimit: expect.any(String) } }]);
      expect(pod.automountServiceAccountToken).toBe(false);
    }
    // runAsNonRoot can only be verified against a numeric user: the image names its user by number.
    expect(dockerfile).toMatch(
      new RegExp(`^USER ${podSpec(find('Deployment', 'job-service-api')).securityContext.runAsUser}\\b`, 'm'),
    );
  });

  it('keep the V8 heap limit well below the memory limit, and every container bounded', () => {
    const toMiB = (quantity: string): number => {
      const [, value, unit] = /^(\d+)(Mi|Gi)$/.exec(quantity)!;
      return Number(value) * (unit === 'Gi' ? 1024 : 1);
    };
    const imageOptions = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile)![1];
    for (const doc of workloads()) {
      const c = container(doc);
      const where = `${doc.kind} ${doc.metadata.name}`;
      expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      const limitMiB = toMiB(c.resources.limits.memory);
      const options = environment(doc).NODE_OPTIONS ?? imageOptions;
      const oldSpaceMiB = Number(/--max-old-space-size=(\d+)/.exec(options)![1]);
      const semiSpaceMiB = Number(/--max-semi-space-size=(\d+)/.exec(options)![1]);
      // Code, buffers and sockets live outside the heap: old space at most 75 % of the limit, and old space
      // plus the young generation (V8 sizes it at three semi-spaces) at most 85 %, so that V8 fails
      // cleanly before the kernel kills the container.
      expect({ where, oldSpace: oldSpaceMiB / limitMiB <= 0.75 }).toEqual({ where, oldSpace: true });
      expect({ where, heap: (oldSpaceMiB + 3 * semiSpaceMiB) / limitMiB <= 0.85 }).toEqual({
        where,
        heap: true,
      });
    }
  });

  it('let the api keep accepting until its endpoint is gone, and finish within its grace period', () => {
    const api = find('Deployment', 'job-service-api');
    const [command, seconds] = container(api).lifecycle.preStop.exec.command;
    expect(command).toBe('sleep');
    const pauseMs = Number(seconds) * 1000;
    const config = appConfig(api);
    // The app's own drain delay defaults to the same pause, for orchestrators without a preStop hook.
    expect(
      loadConfig({ NODE_ENV: 'production', AUTH_DISABLED: 'true', DATABASE_URL: 'postgres://db/jobs' })
        .shutdownDrainDelayMs,
    ).toBe(pauseMs);
    // The grace period covers the pause, the drain delay and the close with its last-resort deadline (+4 s).
    expect(podSpec(api).terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      pauseMs + config.shutdownDrainDelayMs + config.shutdownGraceMs + 4_000,
    );
    expect(api.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
  });

  it('let a draining worker finish jobs of the default timeout before the pod is killed', () => {
    const worker = find('Deployment', 'job-service-worker');
    const config = appConfig(worker);
    expect(config.shutdownGraceMs).toBeGreaterThanOrEqual(config.defaultTimeoutMs);
    expect(podSpec(worker).terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      config.shutdownGraceMs + 4_000,
    );
  });

  it('run the migrations in a bounded Job named after the image, straight to the primary', () => {
    const job = migrateJob();
    expect(job.metadata.name).toBe(`job-service-migrate-${imageVersion(container(job).image)}`);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(job.spec.backoffLimit).toBeGreaterThan(0);
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(container(job).resources.limits.memory).toBeDefined();
    const cluster = find('Cluster', 'job-service-db');
    const url = new URL(environment(job).DATABASE_URL);
    expect(url.hostname).toBe(`${cluster.metadata.name}-rw`);
    // The role's statement_timeout (set for the pooled connections) must not cut an index build short.
    expect(url.searchParams.get('options')).toBe('-c statement_timeout=0');
  });

  it('wire the api and workers to the CloudNativePG Pooler for queries and to the primary for LISTEN', () => {
    const cluster = find('Cluster', 'job-service-db');
    const clusterName = cluster.metadata.name;
    const database = cluster.spec.bootstrap.initdb.database;
    const owner = cluster.spec.bootstrap.initdb.owner;
    const [pooler] = ofKind('Pooler');
    expect(ofKind('Pooler')).toHaveLength(1);
    expect(pooler.spec).toMatchObject({
      cluster: { name: clusterName },
      type: 'rw',
      pgbouncer: { poolMode: 'transaction' },
    });
    const appSecret = `${clusterName}-app`;
    for (const name of ['job-service-api', 'job-service-worker']) {
      const env = environment(find('Deployment', name));
      const pooled = new URL(env.DATABASE_URL);
      const direct = new URL(env.DATABASE_LISTEN_URL);
      // The Pooler's Service is named after the Pooler; the primary's after the cluster.
      expect(pooled.hostname).toBe(pooler.metadata.name);
      expect(direct.hostname).toBe(`${clusterName}-rw`);
      for (const url of [pooled, direct]) {
        expect(url.pathname).toBe(`/${database}`);
        expect(url.username).toBe(`secret.${appSecret}.username`);
        expect(url.password).toBe(`secret.${appSecret}.password`);
      }
      // A transaction pooler hands a server session to another client between transactions.
      expect(env.DB_PREPARED_STATEMENTS).toBe('false');
    }
    // The role carries the statement timeout the service cannot send through the pooler.
    const timeout = cluster.spec.bootstrap.initdb.postInitApplicationSQL.find((sql: string) =>
      /statement_timeout/.test(sql),
    );
    const configured = appConfig(find('Deployment', 'job-service-api')).dbStatementTimeoutMs;
    expect(timeout).toBe(`ALTER ROLE ${owner} SET statement_timeout = '${configured / 1000}s'`);
  });

  it("size the server connections for the pooler and one LISTEN connection per pod at the autoscalers' maxima", () => {
    const cluster = find('Cluster', 'job-service-db');
    const [pooler] = ofKind('Pooler');
    const maxPods =
      find('HorizontalPodAutoscaler', 'job-service-api').spec.maxReplicas +
      find('ScaledObject', 'job-service-worker').spec.maxReplicaCount;
    const poolerServerConnections =
      pooler.spec.instances * Number(pooler.spec.pgbouncer.parameters.default_pool_size);
    // + the migration (2), KEDA (1) and the operator's and replicas' own (about 10).
    expect(Number(cluster.spec.postgresql.parameters.max_connections)).toBeGreaterThan(
      poolerServerConnections + maxPods + 13,
    );
    const poolSize = Number(configMap().DB_POOL_SIZE);
    expect(Number(pooler.spec.pgbouncer.parameters.max_client_conn)).toBeGreaterThan(maxPods * poolSize);
  });

  it("scale workers with KEDA on due and running work, with the claim's own definition of due", () => {
    const scaled = find('ScaledObject', 'job-service-worker');
    expect(scaled.spec.scaleTargetRef.name).toBe('job-service-worker');
    const [trigger] = scaled.spec.triggers;
    expect(trigger.type).toBe('postgresql');
    expect(trigger.metadata.query).toBe(WORKER_DEMAND.trim());
    for (const statement of [WORKER_DEMAND, CLAIM_DUE, COUNT_DUE_WITHOUT_HANDLER])
      expect(statement).toContain(DUE);
    expect(WORKER_DEMAND).toMatch(/sum\(live\)/);
    // One worker per WORKER_CONCURRENCY jobs: running attempts keep the workers that run them.
    expect(trigger.metadata.targetQueryValue).toBe(configMap().WORKER_CONCURRENCY);
    const auth = find('TriggerAuthentication', trigger.authenticationRef.name).spec.secretTargetRef[0];
    // The uri of CloudNativePG's Secret is the primary's, direct: no pooler between KEDA and the count.
    expect(auth).toMatchObject({ parameter: 'connection', name: 'job-service-db-app', key: 'uri' });
  });

  it('are exactly what npm run k8s:render writes (query, target, image, migration Job name)', () => {
    expect(renderManifests(files, { workerDemandSql: WORKER_DEMAND })).toEqual(files);
    const release = renderManifests(files, {
      workerDemandSql: WORKER_DEMAND,
      image: 'registry.example.com/job-service:1.4.2',
    });
    const released = Object.values(release).flatMap((text) =>
      parseAllDocuments(text).map((doc) => doc.toJS() as Doc),
    );
    const jobs = released.filter((doc) => doc.kind === 'Job');
    expect(jobs.map((job) => job.metadata.name)).toEqual(['job-service-migrate-1-4-2']);
    for (const doc of released.filter((d) => d.kind === 'Deployment' || d.kind === 'Job')) {
      expect(container(doc).image).toBe('registry.example.com/job-service:1.4.2');
    }
    const drifted = renderManifests(files, { workerDemandSql: `${WORKER_DEMAND} -- changed` });
    expect(drifted['worker.yaml']).not.toBe(files['worker.yaml']);
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

  it("runs the API with its Kubernetes deployment's memory options, and the rest with the image's", () => {
    const { services } = compose;
    const k8sOptions = environment(find('Deployment', 'job-service-api')).NODE_OPTIONS;
    expect(services.api.environment.NODE_OPTIONS).toBe(k8sOptions);
    expect(services.worker.environment.NODE_OPTIONS).toBeUndefined();
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
