/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return --
   the objects come from parsed YAML (untyped); the assertions are the type check. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageVersion } from '../../src/build-info';
import { loadConfig, REPO_ROOT, SECRET_VARIABLES } from '../../src/config';
import { SHUTDOWN_GRACE_SECONDS } from '../../src/worker/create';
import { stackVars, uniqueSuffix } from '../helpers/stack';

/**
 * The Kubernetes manifests as a platform team applies them: `kustomize build` of the base and the
 * example overlays, every object validated offline against the Kubernetes OpenAPI schemas
 * (kubernetes-validate, strict), the settings checked against dbops' own config schema, and the
 * optional Flyway Job's generated ConfigMap run with the real Flyway CLI.
 */
const run = promisify(execFile);
const K8S = path.join(REPO_ROOT, 'deploy', 'k8s');
const CRD_KINDS = new Set(['ServiceMonitor', 'PrometheusRule']);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
type AnyRecord = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let tools: Record<string, string>;
let tmp: string;
const built: Record<string, { file: string; objects: K8sObject[] }> = {};

async function build(name: string, dir: string, extraArgs: string[] = []) {
  const { stdout } = await run(tools.KUSTOMIZE!, ['build', ...extraArgs, dir], { maxBuffer: 64 << 20 });
  const file = path.join(tmp, `${name}.yaml`);
  writeFileSync(file, stdout);
  // kubernetes-validate brings PyYAML into the tool venv: parse with it (no YAML package in node_modules).
  const python = path.join(path.dirname(tools.KUBERNETES_VALIDATE!), 'python');
  const { stdout: json } = await run(
    python,
    [
      '-c',
      'import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))',
      file,
    ],
    { maxBuffer: 64 << 20 },
  );
  built[name] = { file, objects: JSON.parse(json) as K8sObject[] };
}

async function validate(file: string): Promise<{ code: number; lines: string[] }> {
  try {
    const { stdout, stderr } = await run(tools.KUBERNETES_VALIDATE!, ['--strict', file], {
      maxBuffer: 16 << 20,
    });
    return { code: 0, lines: `${stdout}${stderr}`.split('\n').filter(Boolean) };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, lines: `${e.stdout}${e.stderr}`.split('\n').filter(Boolean) };
  }
}

function find(name: string, kind: string, objectName: string): AnyRecord {
  const o = built[name]!.objects.find((x) => x.kind === kind && x.metadata.name.startsWith(objectName));
  if (!o) throw new Error(`${name}: no ${kind} ${objectName}`);
  return o;
}

beforeAll(async () => {
  const { stdout } = await run(
    'bash',
    [path.join(REPO_ROOT, 'deploy/scripts/tools.sh'), 'kustomize', 'validate'],
    {
      timeout: 280_000,
    },
  );
  tools = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split('=', 2) as [string, string]),
  );
  tmp = mkdtempSync(path.join(os.tmpdir(), 'dbops-deploy-'));
  await build('base', path.join(K8S, 'base'));
  await build('example', path.join(K8S, 'overlays/example'));
  await build('flyway', path.join(K8S, 'overlays/example-flyway'), [
    '--load-restrictor',
    'LoadRestrictionsNone',
  ]);
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('kustomize build + offline schema validation', () => {
  it.each(['base', 'example'])(
    '%s: every object passes strict Kubernetes schema validation',
    async (name) => {
      const { code, lines } = await validate(built[name]!.file);
      expect(
        lines.filter((l) => !l.startsWith('INFO')),
        lines.join('\n'),
      ).toEqual([]);
      expect(code).toBe(0);
      expect(lines.filter((l) => l.includes(' passed for resource '))).toHaveLength(
        built[name]!.objects.length,
      );
    },
  );

  it('example-flyway: core objects pass; only the Prometheus Operator CRDs lack a core schema', async () => {
    const { code, lines } = await validate(built.flyway!.file);
    expect(code, lines.join('\n')).toBe(0);
    const unknown = lines.filter((l) => !l.startsWith('INFO'));
    expect(unknown).toHaveLength(2);
    for (const l of unknown)
      expect(l).toMatch(/Couldn't find schema for kind (ServiceMonitor|PrometheusRule)/);
    const core = built.flyway!.objects.filter((o) => !CRD_KINDS.has(o.kind));
    expect(lines.filter((l) => l.includes(' passed for resource '))).toHaveLength(core.length);
  });

  it('the validator really rejects a wrong manifest (misspelled field)', async () => {
    const bad = path.join(tmp, 'bad.yaml');
    const pdb = { ...find('base', 'PodDisruptionBudget', 'dbops-worker') };
    pdb.spec = { ...pdb.spec, maxUnavaliable: 1 };
    writeFileSync(bad, JSON.stringify(pdb));
    const { code, lines } = await validate(bad);
    expect(code).not.toBe(0);
    expect(lines.join('\n')).toContain('maxUnavaliable');
  });
});

describe('what the manifests promise', () => {
  it('the worker Deployment: probes on the real health endpoints, non-root, read-only root, /tmp emptyDir', () => {
    const dep = find('example', 'Deployment', 'dbops-worker');
    const config = find('example', 'ConfigMap', 'dbops-config').data as Record<string, string>;
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    expect(c.image).toMatch(/^[\w.-]+\/[\w./-]+:[\w.-]+$/); // the overlay replaced the `dbops` placeholder
    expect(c.args).toEqual(['worker']);
    const port = Number(config.DBOPS_HTTP_PORT);
    expect(c.ports).toEqual([{ name: 'http', containerPort: port, protocol: 'TCP' }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    const tmpMount = c.volumeMounts.find((m: AnyRecord) => m.mountPath === '/tmp');
    const tmpVolume = pod.volumes.find((v: AnyRecord) => v.name === tmpMount.name);
    expect(tmpVolume.emptyDir.sizeLimit).toBeTruthy();
    // Activities get shutdownGraceTime and then must see the cancellation and clean up.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(3 * SHUTDOWN_GRACE_SECONDS);
    // The release the pods run: the version label and the image tag follow package.json.
    expect(dep.metadata.labels['app.kubernetes.io/version']).toBe(packageVersion());
    expect(dep.spec.template.metadata.labels['app.kubernetes.io/version']).toBe(packageVersion());
    expect(c.image.split(':').at(-1).startsWith(packageVersion())).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(c.resources.requests.memory).toBeTruthy();
    expect(c.resources.limits.memory).toBeTruthy();
    expect(find('example', 'ServiceAccount', 'dbops').automountServiceAccountToken).toBe(false);

    const service = find('example', 'Service', 'dbops-worker-metrics');
    expect(service.spec.selector).toEqual(dep.spec.selector.matchLabels);
    expect(find('example', 'PodDisruptionBudget', 'dbops-worker').spec.selector).toEqual(dep.spec.selector);
  });

  it('the one-shot Jobs run `dbops migrate` and `dbops schedules apply` with the same settings', () => {
    for (const [name, args] of [
      ['dbops-migrate', ['migrate']],
      ['dbops-schedules-apply', ['schedules', 'apply', '--prune']],
    ] as const) {
      const job = find('example', 'Job', name);
      const c = job.spec.template.spec.containers[0];
      expect(c.args).toEqual(args);
      expect(c.image).toBe(
        find('example', 'Deployment', 'dbops-worker').spec.template.spec.containers[0].image,
      );
      expect(c.envFrom).toEqual([
        { configMapRef: { name: 'dbops-config' } },
        { secretRef: { name: 'dbops-secrets' } },
      ]);
      expect(job.spec.template.spec.restartPolicy).toBe('Never');
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    }
  });

  it('ConfigMap + Secret are a valid dbops configuration; secrets only in the Secret, placeholders only', () => {
    for (const name of ['base', 'example']) {
      const data = find(name, 'ConfigMap', 'dbops-config').data as Record<string, string>;
      for (const key of Object.keys(data))
        expect(SECRET_VARIABLES.has(key), `${key} is a secret`).toBe(false);
    }
    const config = find('example', 'ConfigMap', 'dbops-config').data as Record<string, string>;
    const secret = find('example', 'Secret', 'dbops-secrets').stringData as Record<string, string>;
    for (const [key, value] of Object.entries(secret)) {
      expect(value === '' || value.includes('REPLACE'), `${key} must be a placeholder`).toBe(true);
    }
    expect(Object.keys(secret)).toEqual(
      expect.arrayContaining([
        'PGPASSWORD',
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'DBOPS_SLACK_WEBHOOK_URL',
      ]),
    );
    const loaded = loadConfig({ DBOPS_STACK_HOME: path.join(tmp, 'no-stack'), ...config, ...secret });
    expect(loaded.storage.kind).toBe('s3');
    expect(loaded.httpPort).toBe(9464);
    expect(loaded.temporal.namespace).toBe('dbops-prod');
    expect(loaded.databases).toEqual(['recsys', 'recsys_analytics']);
  });

  it('the NetworkPolicy allows egress only to DNS, PostgreSQL, Temporal, Milvus and HTTPS', () => {
    const np = find('example', 'NetworkPolicy', 'dbops');
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'dbops' });
    const ports = (np.spec.egress as AnyRecord[]).flatMap((r) =>
      r.ports.map((p: AnyRecord) => `${p.protocol}/${p.port}`),
    );
    expect(ports.sort()).toEqual(['TCP/19530', 'TCP/443', 'TCP/53', 'TCP/5432', 'TCP/7233', 'UDP/53']);
    for (const rule of np.spec.egress as AnyRecord[]) expect(rule.to?.length).toBeGreaterThan(0);
  });

  it('the monitoring component alerts when the newest verified backup is older than 26 h', () => {
    const rule = find('flyway', 'PrometheusRule', 'dbops');
    const alerts = (rule.spec.groups as AnyRecord[]).flatMap((g) => g.rules);
    const age = alerts.find((a: AnyRecord) => a.alert === 'DbopsNewestVerifiedBackupTooOld');
    expect(age.expr).toContain('dbops_backup_newest_verified_age_seconds');
    expect(age.expr).toContain('> 26 * 3600');
    const monitor = find('flyway', 'ServiceMonitor', 'dbops-worker');
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    // The ServiceMonitor selects the metrics Service by its labels.
    expect(find('flyway', 'Service', 'dbops-worker-metrics').metadata.labels).toMatchObject(
      monitor.spec.selector.matchLabels,
    );
  });
});

/** The element of a manifest list (env, volumes, mounts) that `match`es; fails naming `what`. */
function pick(list: unknown, what: string, match: (x: AnyRecord) => boolean): AnyRecord {
  const found = (list as AnyRecord[] | undefined)?.find(match);
  if (!found) throw new Error(`no ${what}`);
  return found;
}

describe('signed approvals and signed manifests', () => {
  /** The worker's DBOPS_APPROVERS_FILE, its mount and the ConfigMap behind it, in overlay `name`. */
  function approvers(name: string) {
    const pod = find(name, 'Deployment', 'dbops-worker').spec.template.spec;
    const c = pod.containers[0];
    const file = pick(c.env, 'DBOPS_APPROVERS_FILE', (e) => e.name === 'DBOPS_APPROVERS_FILE')
      .value as string;
    const mount = pick(c.volumeMounts, `mount of ${file}`, (m) => m.mountPath === path.posix.dirname(file));
    const volume = pick(pod.volumes, `volume ${mount.name}`, (v) => v.name === mount.name);
    const configMap = find(name, 'ConfigMap', volume.configMap?.name as string);
    return { file, mount, volume, configMap, content: configMap.data[path.posix.basename(file)] as string };
  }

  it.each(['base', 'example', 'flyway'])(
    '%s: the worker requires signatures: DBOPS_APPROVERS_FILE is the ConfigMap dbops-approvers, mounted read-only',
    (name) => {
      const { file, mount, volume, configMap, content } = approvers(name);
      expect(file).toBe('/etc/dbops/approvers/allowed_signers');
      // Read-only, and no subPath: kubelet refreshes the folder in place, so a revoked key needs no restart.
      expect(mount).toEqual({ name: 'approvers', mountPath: '/etc/dbops/approvers', readOnly: true });
      expect(volume.configMap.optional).toBeUndefined(); // no ConfigMap, no worker (never unsigned)
      expect(configMap.metadata.name).toBe('dbops-approvers');
      // The file deploy-approvers.test.ts proves with ssh-keygen: the base's, or the overlay's own.
      const source = name === 'base' ? 'base' : 'overlays/example';
      expect(content).toBe(readFileSync(path.join(K8S, source, 'allowed_signers'), 'utf8'));
      // A worker setting (the worker reads it), valid for dbops' own config schema.
      const config = find(name, 'ConfigMap', 'dbops-config').data as Record<string, string>;
      const loaded = loadConfig({
        DBOPS_STACK_HOME: path.join(tmp, 'no-stack'),
        ...config,
        DBOPS_APPROVERS_FILE: file,
      });
      expect(loaded.restore.approversFile).toBe(file);
      // Only the worker verifies decisions: the Jobs neither mount the file nor name it.
      for (const job of built[name]!.objects.filter((o) => o.kind === 'Job')) {
        const jc = (job as AnyRecord).spec.template.spec.containers[0];
        expect(JSON.stringify(jc)).not.toContain('DBOPS_APPROVERS_FILE');
      }
    },
  );

  it('manifest signing is opt-in: the component mounts the Secret dbops-manifest-key read-only at DBOPS_MANIFEST_KEY', () => {
    const envOf = (name: string) =>
      find(name, 'Deployment', 'dbops-worker').spec.template.spec.containers[0].env as AnyRecord[];
    expect(envOf('example').some((e) => e.name === 'DBOPS_MANIFEST_KEY')).toBe(false);
    const pod = find('flyway', 'Deployment', 'dbops-worker').spec.template.spec;
    const variable = pick(envOf('flyway'), 'DBOPS_MANIFEST_KEY', (e) => e.name === 'DBOPS_MANIFEST_KEY');
    const file = variable.value as string;
    expect(file).toBe('/etc/dbops/manifest-key/manifest-key.pem');
    const dir = path.posix.dirname(file);
    const mount = pick(pod.containers[0].volumeMounts, `mount of ${dir}`, (m) => m.mountPath === dir);
    expect(mount).toEqual({ name: 'manifest-key', mountPath: dir, readOnly: true });
    const volume = pick(pod.volumes, 'volume manifest-key', (v) => v.name === mount.name);
    expect(volume.secret).toEqual({
      secretName: 'dbops-manifest-key',
      defaultMode: 0o440, // owner root, group fsGroup 10001: the worker and nobody else
      items: [{ key: 'manifest-key.pem', path: path.posix.basename(file) }],
    });
    // The key is never an environment value, and no placeholder Secret for it is shipped.
    expect(variable.valueFrom).toBeUndefined();
    expect(built.flyway!.objects.some((o) => o.metadata.name === 'dbops-manifest-key')).toBe(false);
    // Components add volumes: the example's bigger /tmp still lands on the tmp volume.
    expect(pick(pod.volumes, 'volume tmp', (v) => v.name === 'tmp').emptyDir.sizeLimit).toBe('50Gi');
  });
});

describe('encryption in the example overlay', () => {
  const podOf = (kind: string, name: string): AnyRecord =>
    find('example', kind, name).spec.template.spec as AnyRecord;
  const secretFile = (pod: AnyRecord, variable: string) => {
    const env = pick(pod.containers[0].env, variable, (e) => e.name === variable);
    expect(env.valueFrom).toBeUndefined(); // a file path, never the secret itself
    const dir = path.posix.dirname(env.value as string);
    const mount = pick(pod.containers[0].volumeMounts, `mount of ${dir}`, (m) => m.mountPath === dir);
    expect(mount.readOnly).toBe(true);
    return pick(pod.volumes, `volume ${mount.name}`, (v) => v.name === mount.name).secret as AnyRecord;
  };

  it('the age identity is mounted into the worker only; the recipients are public, in the ConfigMap', () => {
    const worker = podOf('Deployment', 'dbops-worker');
    expect(secretFile(worker, 'DBOPS_BACKUP_AGE_IDENTITY')).toMatchObject({
      secretName: 'dbops-backup-age-identity',
      defaultMode: 0o440,
    });
    for (const job of built.example!.objects.filter((o) => o.kind === 'Job'))
      expect(JSON.stringify(job)).not.toContain('age-identity');
    const config = find('example', 'ConfigMap', 'dbops-config').data as Record<string, string>;
    const loaded = loadConfig({ DBOPS_STACK_HOME: path.join(tmp, 'no-stack'), ...config });
    expect(loaded.age.recipients).toEqual([config.DBOPS_BACKUP_AGE_RECIPIENTS]);
  });

  it('PostgreSQL: verify-full, with the CA mounted wherever a process connects to it (worker, migrate, Flyway)', () => {
    const config = find('example', 'ConfigMap', 'dbops-config').data as Record<string, string>;
    expect(config.PGSSLMODE).toBe('verify-full');
    for (const [kind, name] of [
      ['Deployment', 'dbops-worker'],
      ['Job', 'dbops-migrate'],
    ] as const) {
      expect(secretFile(podOf(kind, name), 'PGSSLROOTCERT')).toMatchObject({
        secretName: 'dbops-postgres-tls',
        items: [{ key: 'ca.crt', path: 'ca.crt' }],
      });
    }
    // The settings as dbops reads them: verify-full with that CA, for the driver and every child tool.
    const worker = podOf('Deployment', 'dbops-worker');
    const rootCert = pick(worker.containers[0].env, 'PGSSLROOTCERT', (e) => e.name === 'PGSSLROOTCERT');
    const loaded = loadConfig({
      DBOPS_STACK_HOME: path.join(tmp, 'no-stack'),
      ...config,
      PGSSLROOTCERT: rootCert.value as string,
    });
    expect(loaded.pg.sslmode).toBe('verify-full');
    expect(loaded.pg.ssl.rootCert).toBe('/etc/dbops/postgres-tls/ca.crt');
    // Flyway's JDBC driver reads the same CA from its URL.
    const flyway = find('flyway', 'Job', 'dbops-flyway-migrate').spec.template.spec as AnyRecord;
    const url = pick(flyway.containers[0].env, 'FLYWAY_URL', (e) => e.name === 'FLYWAY_URL').value as string;
    expect(url).toMatch(/\?sslmode=\$\(PGSSLMODE\)&sslrootcert=\/etc\/dbops\/postgres-tls\/ca\.crt$/);
    const flywayMount = pick(flyway.containers[0].volumeMounts, 'CA mount', (m) => m.name === 'postgres-tls');
    expect(flywayMount.mountPath).toBe('/etc/dbops/postgres-tls');
  });

  it('Temporal: mutual TLS; CA, client certificate and key reach the worker and the schedules Job only', () => {
    const config = find('example', 'ConfigMap', 'dbops-config').data as Record<string, string>;
    expect(config.DBOPS_TEMPORAL_TLS).toBe('true');
    for (const [kind, name] of [
      ['Deployment', 'dbops-worker'],
      ['Job', 'dbops-schedules-apply'],
    ] as const) {
      const pod = podOf(kind, name);
      for (const variable of ['DBOPS_TEMPORAL_TLS_CA', 'DBOPS_TEMPORAL_TLS_CERT', 'DBOPS_TEMPORAL_TLS_KEY'])
        expect(secretFile(pod, variable)).toMatchObject({
          secretName: 'dbops-temporal-tls',
          defaultMode: 0o440,
        });
      expect(pod.securityContext.fsGroup).toBe(10001);
      const env = Object.fromEntries(
        (pod.containers[0].env as AnyRecord[])
          .filter((e) => (e.name as string).startsWith('DBOPS_TEMPORAL_'))
          .map((e) => [e.name as string, e.value as string]),
      );
      const loaded = loadConfig({ DBOPS_STACK_HOME: path.join(tmp, 'no-stack'), ...config, ...env });
      expect(loaded.temporal.tls).toBe(true);
      expect(loaded.temporal.tlsFiles).toMatchObject({
        ca: '/etc/dbops/temporal-tls/ca.crt',
        cert: '/etc/dbops/temporal-tls/tls.crt',
        key: '/etc/dbops/temporal-tls/tls.key',
      });
    }
    // The migrate Job never talks to Temporal: no client key there.
    expect(JSON.stringify(find('example', 'Job', 'dbops-migrate'))).not.toContain('temporal-tls');
  });

  it('the payload keys reach the worker and the schedules Job (both talk to Temporal), group-readable', () => {
    for (const [kind, name] of [
      ['Deployment', 'dbops-worker'],
      ['Job', 'dbops-schedules-apply'],
    ] as const) {
      const pod = podOf(kind, name);
      expect(secretFile(pod, 'DBOPS_PAYLOAD_KEYS')).toMatchObject({
        secretName: 'dbops-payload-keys',
        defaultMode: 0o440,
      });
      expect(pod.securityContext.fsGroup).toBe(10001);
    }
    // No placeholder Secret for either is shipped: they are made out of band.
    for (const secret of ['dbops-backup-age-identity', 'dbops-payload-keys'])
      expect(built.example!.objects.some((o) => o.metadata.name === secret)).toBe(false);
  });
});

describe('the optional Flyway Job', () => {
  it('its ConfigMap holds exactly the files of migrations/ (keep components/flyway in sync)', () => {
    const cm = find('flyway', 'ConfigMap', 'dbops-flyway-migrations');
    const files = readdirSync(path.join(REPO_ROOT, 'migrations')).sort();
    expect(Object.keys(cm.data as object).sort(), 'list every migrations/ file in components/flyway').toEqual(
      files,
    );
    for (const f of files)
      expect(cm.data[f]).toBe(readFileSync(path.join(REPO_ROOT, 'migrations', f), 'utf8'));
    expect(built.flyway!.objects.some((o) => o.kind === 'Job' && o.metadata.name === 'dbops-migrate')).toBe(
      false,
    );
  });

  it('runs with the real Flyway CLI exactly as the Job does and migrates a fresh database', async () => {
    const job = find('flyway', 'Job', 'dbops-flyway-migrate');
    const c = job.spec.template.spec.containers[0];
    expect(c.image).toBe('flyway/flyway:10.22.0');
    const mount = c.volumeMounts.find((m: AnyRecord) => m.name === 'migrations');
    expect(mount.mountPath).toBe(c.workingDir);

    // The mounted ConfigMap, as files in the Job's working directory.
    const cm = find('flyway', 'ConfigMap', 'dbops-flyway-migrations');
    const workdir = mkdtempSync(path.join(tmp, 'flyway-'));
    for (const [file, content] of Object.entries(cm.data as Record<string, string>)) {
      writeFileSync(path.join(workdir, file), content);
    }
    const vars = stackVars();
    const database = `t_deploy_${uniqueSuffix()}`;
    const podEnv: Record<string, string> = {
      PGHOST: vars.PGHOST!,
      PGPORT: vars.PGPORT!,
      PGDATABASE: database,
      PGUSER: vars.PGUSER!,
      PGSSLMODE: 'disable',
    };
    const expand = (v: string) => v.replace(/\$\((\w+)\)/g, (_, n: string) => podEnv[n] ?? `$(${n})`);
    const flywayEnv: Record<string, string> = { FLYWAY_PASSWORD: '' };
    for (const e of c.env as AnyRecord[])
      if (typeof e.value === 'string') flywayEnv[e.name] = expand(e.value);
    expect(flywayEnv.FLYWAY_URL).toBe(
      `jdbc:postgresql://${vars.PGHOST}:${vars.PGPORT}/${database}?sslmode=disable&sslrootcert=/etc/dbops/postgres-tls/ca.crt`,
    );

    const admin = new PgClient({
      host: vars.PGHOST,
      port: Number(vars.PGPORT),
      user: vars.PGUSER,
      database: 'postgres',
    });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
      const { FLYWAY_URL, FLYWAY_USER, FLYWAY_PASSWORD } = flywayEnv;
      await run(vars.DBOPS_FLYWAY!, c.args as string[], {
        cwd: workdir,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, FLYWAY_URL, FLYWAY_USER, FLYWAY_PASSWORD },
        timeout: 120_000,
      });
      const db = new PgClient({ host: vars.PGHOST, port: Number(vars.PGPORT), user: vars.PGUSER, database });
      await db.connect();
      try {
        const { rows } = await db.query<{ version: string }>(
          'SELECT version FROM flyway_schema_history WHERE success AND version IS NOT NULL ORDER BY installed_rank',
        );
        const versions = Object.keys(cm.data as object)
          .filter((f) => /^V.*\.sql$/.test(f))
          .map((f) => /^V([^_]+)__/.exec(f)![1]);
        expect(rows.map((r) => r.version)).toEqual(versions.sort());
      } finally {
        await db.end();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    }
  }, 240_000);
});
