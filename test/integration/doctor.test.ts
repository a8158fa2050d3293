import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctorPassed, runDoctor } from '../../src/doctor/checks';
import { checkManifestKey, checkRestoreApprovals } from '../../src/doctor/signing';
import { dbops } from '../drills/kit/dbops-cli';
import { s3Overrides, testConfig, testRun, uniqueSuffix } from '../helpers/stack';
import { startOwnS3, type OwnS3 } from '../helpers/versitygw';
import { startTestWorker, type TestWorker } from '../helpers/worker';

const run = promisify(execFile);

/** Real keys and files for the signing rows: two approvers' SSH keys and an Ed25519 manifest key. */
interface SigningFiles {
  readonly dir: string;
  readonly sshKeygen: string;
  /** `<name>.pub` of a person's own key: "ssh-ed25519 AAAA… <name>". */
  readonly pub: (name: (typeof PEOPLE)[number]) => string;
  readonly approvers: string;
  readonly placeholders: string;
  readonly manifestKey: string;
  /** What signed manifests name: SHA-256 of the raw 32-byte public key, first 16 hex digits. */
  readonly manifestKeyId: string;
  /** Writes `content` to a new file in the folder and returns its path. */
  readonly file: (name: string, content: string) => string;
  readonly remove: () => void;
}

const PEOPLE = ['alice', 'bob', 'dave', 'frank', 'gina', 'ivan'] as const;

async function signingFiles(): Promise<SigningFiles> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-doctor-signing-'));
  for (const name of PEOPLE)
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path.join(dir, name)]);
  const pub = (name: string) => readFileSync(path.join(dir, `${name}.pub`), 'utf8').trim();
  const file = (name: string, content: string) => {
    writeFileSync(path.join(dir, name), content);
    return path.join(dir, name);
  };
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return {
    dir,
    sshKeygen: (await run('bash', ['-c', 'command -v ssh-keygen'])).stdout.trim(),
    pub,
    approvers: file(
      'allowed_signers',
      `# approvers\nalice@example.com namespaces="dbops-restore" ${pub('alice')}\nbob@example.com ${pub('bob')}\n`,
    ),
    placeholders: file(
      'placeholders',
      [
        '# PLACEHOLDERS: replace them with real public keys',
        'alice@example.com namespaces="dbops-restore" ssh-ed25519 REPLACE_WITH_ALICES_PUBLIC_KEY',
        'bob@example.com namespaces="dbops-restore" ssh-ed25519 REPLACE_WITH_BOBS_PUBLIC_KEY',
        '',
      ].join('\n'),
    ),
    manifestKey: file('manifest-key.pem', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    manifestKeyId: createHash('sha256').update(raw).digest('hex').slice(0, 16),
    file,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

describe('dbops doctor against the real stack', () => {
  const taskQueue = `test-doctor-${uniqueSuffix()}`;
  let tw: TestWorker;
  let s3: OwnS3;
  let files: SigningFiles;

  beforeAll(async () => {
    tw = await startTestWorker(testConfig({ DBOPS_TASK_QUEUE: taskQueue }));
    s3 = await startOwnS3();
    files = await signingFiles();
  });
  afterAll(async () => {
    await tw?.stop();
    await s3?.stop();
    files?.remove();
  });

  function configWithOwnS3(overrides: Record<string, string> = {}) {
    return testConfig({
      ...s3Overrides('doctor'),
      DBOPS_S3_ENDPOINT: s3.endpoint,
      DBOPS_S3_BUCKET: s3.bucket,
      DBOPS_TASK_QUEUE: taskQueue,
      ...overrides,
    });
  }

  it('passes every required row when all servers and a worker are up; unsigned approvals only warn', async () => {
    const results = await runDoctor(configWithOwnS3());
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(results.map((r) => r.name)).toEqual([
      'postgresql',
      'pg client tools',
      'temporal',
      'worker',
      'milvus',
      'backup storage',
      'slack',
      'restore approvals',
      'manifest key',
    ]);
    const advisory: Record<string, string> = { 'restore approvals': 'warn', 'manifest key': 'skip' };
    for (const r of results.filter((x) => x.required))
      expect({ name: r.name, status: r.status }).toEqual({ name: r.name, status: advisory[r.name] ?? 'ok' });
    expect(byName.postgresql!.detail).toMatch(/PostgreSQL 18\.\d+; pgvector and pg_trgm available/);
    expect(byName['pg client tools']!.detail).toMatch(/pg_dump\/pg_restore\/psql 18/);
    expect(byName.worker!.detail).toContain(taskQueue);
    expect(byName.milvus!.detail).toMatch(/Milvus v?2\.3\.5/);
    expect(byName.slack!.status).toBe('warn');
    // The dev stack's default: no DBOPS_APPROVERS_FILE.
    expect(byName['restore approvals']!.detail).toBe(
      'DBOPS_APPROVERS_FILE is not set: restores are approved by unsigned names: anyone who can reach the Temporal namespace can approve',
    );
    expect(byName['restore approvals']!.hint).toBe(
      'set DBOPS_APPROVERS_FILE to an allowed-signers file, README "Signed approvals"',
    );
    expect(byName['manifest key']!.detail).toMatch(/^DBOPS_MANIFEST_KEY is not set/);
    expect(doctorPassed(results)).toBe(true);
  });

  it('with an allowed-signers file and an Ed25519 manifest key, both rows pass naming signers and key', async () => {
    const results = await runDoctor(
      configWithOwnS3({ DBOPS_APPROVERS_FILE: files.approvers, DBOPS_MANIFEST_KEY: files.manifestKey }),
    );
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(byName['restore approvals']).toMatchObject({
      status: 'ok',
      detail: `${files.approvers}: 2 principals (alice@example.com, bob@example.com) with 2 keys can sign restore decisions (checked with ${files.sshKeygen})`,
    });
    expect(byName['manifest key']).toMatchObject({
      status: 'ok',
      detail: `${files.manifestKey}: Ed25519 private key, key id ${files.manifestKeyId} (the same on every worker)`,
    });
    expect(results.filter((r) => r.status === 'fail')).toEqual([]);
    expect(doctorPassed(results)).toBe(true);
  });

  it("DBOPS_BACKUP_MIRROR=local: the backup storage row proves the local copy's folder too", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dbops-doctor-mirror-'));
    try {
      const ok = (
        await runDoctor(configWithOwnS3({ DBOPS_BACKUP_MIRROR: 'local', DBOPS_BACKUP_DIR: dir }))
      ).find((r) => r.name === 'backup storage');
      expect(ok).toMatchObject({
        status: 'ok',
        detail: expect.stringContaining(`the local copy's folder ${dir}`),
      });
      const file = path.join(dir, 'not-a-folder');
      writeFileSync(file, 'x');
      const bad = (
        await runDoctor(configWithOwnS3({ DBOPS_BACKUP_MIRROR: 'local', DBOPS_BACKUP_DIR: file }))
      ).find((r) => r.name === 'backup storage');
      expect(bad).toMatchObject({
        status: 'fail',
        hint: expect.stringContaining(`DBOPS_BACKUP_DIR (${file}`),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an allowed-signers file with only placeholder keys fails the run: the worker would refuse every approval', async () => {
    const results = await runDoctor(configWithOwnS3({ DBOPS_APPROVERS_FILE: files.placeholders }));
    const failed = results.filter((r) => r.status === 'fail');
    expect(failed.map((r) => r.name)).toEqual(['restore approvals']);
    expect(failed[0]!.detail).toBe(
      `${files.placeholders} lists no valid signer (line 2: not a valid ssh-ed25519 public key (ssh-keygen: (stdin) is not a public key file.); line 3: not a valid ssh-ed25519 public key (ssh-keygen: (stdin) is not a public key file.)): the worker refuses every signed decision`,
    );
    expect(failed[0]!.hint).toMatch(/^add one line per approver: <principal> namespaces="dbops-restore"/);
    expect(doctorPassed(results)).toBe(false);
  });

  it('`dbops doctor` exits 0 with the unsigned-approvals warning and 1 when the approvers file lists nobody', async () => {
    const env = {
      DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
      DBOPS_BACKUP_DIR: testRun().backupDir,
      DBOPS_TASK_QUEUE: taskQueue,
    };
    const warned = await dbops(env, 'doctor');
    expect(warned.stdout).toMatch(/restore approvals\s*│\s*! warn\s*│\s*DBOPS_APPROVERS_FILE is not set/);
    expect(warned.stdout).toContain('all required checks passed, with warnings: see "fix"');
    expect(warned.code, warned.stderr).toBe(0);

    const refused = await dbops({ ...env, DBOPS_APPROVERS_FILE: files.placeholders }, 'doctor', '--json');
    const report = JSON.parse(refused.stdout) as {
      passed: boolean;
      checks: { name: string; status: string }[];
    };
    expect(report.passed).toBe(false);
    expect(report.checks.find((c) => c.name === 'restore approvals')!.status).toBe('fail');
    expect(refused.code).toBe(1);
  }, 120_000);

  it('with the S3 server stopped, fails on exactly that row with its hint', async () => {
    await s3.stop();
    const results = await runDoctor(configWithOwnS3());
    const failed = results.filter((r) => r.status === 'fail');
    expect(failed.map((r) => r.name)).toEqual(['backup storage']);
    expect(failed[0]!.hint).toMatch(/DBOPS_S3_BUCKET \(test-bucket\), DBOPS_S3_ENDPOINT/);
    expect(doctorPassed(results)).toBe(false);
  });

  it('with no worker polling, fails on the worker row and says how to start one', async () => {
    const results = await runDoctor(testConfig({ DBOPS_TASK_QUEUE: `nobody-polls-${uniqueSuffix()}` }));
    const failed = results.filter((r) => r.status === 'fail');
    expect(failed.map((r) => r.name)).toEqual(['worker']);
    expect(failed[0]!.hint).toMatch(/dbops worker/);
  });

  it('a PostgreSQL nobody listens on fails the postgresql row naming the address, and skips the tools row', async () => {
    const results = await runDoctor(testConfig({ PGPORT: '1', DBOPS_TASK_QUEUE: taskQueue }));
    const pg = results.find((r) => r.name === 'postgresql')!;
    expect(pg.status).toBe('fail');
    expect(pg.hint).toContain('127.0.0.1:1');
    expect(results.find((r) => r.name === 'pg client tools')!.status).toBe('skip');
  });
});

describe('the signing rows case by case (real ssh-keygen, real files)', () => {
  let files: SigningFiles;
  beforeAll(async () => {
    files = await signingFiles();
  });
  afterAll(() => files?.remove());

  it('an approvers file that cannot be read fails, naming the variable and where to mount it', async () => {
    const missing = await checkRestoreApprovals(path.join(files.dir, 'nope'), process.env.PATH);
    expect(missing.status).toBe('fail');
    expect(missing.detail).toContain(
      `DBOPS_APPROVERS_FILE=${path.join(files.dir, 'nope')} cannot be read (ENOENT`,
    );
    expect(missing.hint).toContain('ConfigMap dbops-approvers');
    const folder = path.join(files.dir, 'a-folder');
    mkdirSync(folder);
    expect((await checkRestoreApprovals(folder, process.env.PATH)).detail).toContain('EISDIR');
  });

  it('without ssh-keygen on PATH the row fails: the worker could not check a signature', async () => {
    const empty = mkdtempSync(path.join(files.dir, 'empty-path-'));
    const r = await checkRestoreApprovals(files.approvers, empty);
    expect(r).toMatchObject({
      status: 'fail',
      detail: `ssh-keygen is not on PATH (${empty}): the worker cannot check signed decisions`,
    });
    expect(r.hint).toContain('apt-get install openssh-client');
  });

  it('a file of comments only lists no signer', async () => {
    const r = await checkRestoreApprovals(files.file('comments', '# nobody yet\n\n'), process.env.PATH);
    expect(r.status).toBe('fail');
    expect(r.detail).toMatch(
      /lists no valid signer \(no key lines\): the worker refuses every signed decision$/,
    );
  });

  it('lines the worker cannot use are each named with the reason; the usable signer is counted', async () => {
    const pub = files.pub;
    const file = files.file(
      'mixed',
      [
        `alice@example.com ${pub('alice')}`, // 1: usable
        `carol@example.com ssh-ed25519 REPLACE_ME`, // 2: placeholder
        `dave@example.com,erin@example.com ${pub('dave')}`, // 3: one key, two people
        `frank@example.com namespaces="git" ${pub('frank')}`, // 4: another namespace: ignored, not a mistake
        `gina@example.com valid-before="20200101" ${pub('gina')}`, // 5: expired
        `hank@example.com ${pub('alice')}`, // 6: alice's key again, under another name
        `ivan@example.com bogus-option ${pub('ivan')}`, // 7: ssh-keygen skips the line
        'just-a-name', // 8: not a key line
      ].join('\n'),
    );
    const r = await checkRestoreApprovals(file, process.env.PATH, new Date('2026-06-01T00:00:00Z'));
    expect(r.status).toBe('warn');
    expect(r.detail).toContain(
      '1 principal (alice@example.com) with 1 key can sign restore decisions; 1 line for other namespaces ignored; 6 lines cannot:',
    );
    for (const expected of [
      'line 2: not a valid ssh-ed25519 public key',
      'line 3: names 2 principals (dave@example.com,erin@example.com) for one key',
      'line 5: the key expired (valid-before 20200101)',
      "line 6: the same key as line 1 (alice@example.com): ssh-keygen takes the first line's principal",
      'line 7: unknown option "bogus-option" (ssh-keygen skips the line)',
      'line 8: is not `principals [options] key-type base64-key`',
    ])
      expect(r.detail).toContain(expected);
    expect(r.detail).not.toContain('line 4');
  });

  it('DBOPS_MANIFEST_KEY must be a readable Ed25519 private key in PEM; every failure names the variable', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cases: [string, string, RegExp][] = [
      ['missing', path.join(files.dir, 'no-key.pem'), /cannot be read \(ENOENT\)/],
      [
        'RSA',
        files.file('rsa.pem', rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
        /holds a rsa key, not an Ed25519 one/,
      ],
      [
        'public key only',
        files.file('public.pem', rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string),
        /is not an unencrypted PEM private key/,
      ],
      ['an OpenSSH key', path.join(files.dir, 'alice'), /is not an unencrypted PEM private key/],
    ];
    for (const [what, file, detail] of cases) {
      const r = await checkManifestKey(file);
      expect({ what, status: r.status }).toEqual({ what, status: 'fail' });
      expect(r.detail).toContain(`DBOPS_MANIFEST_KEY=${file} `);
      expect(r.detail).toMatch(detail);
      expect(r.hint).toContain('openssl genpkey -algorithm ed25519');
    }
    const ok = await checkManifestKey(files.manifestKey);
    expect(ok.status ?? 'ok').toBe('ok');
    expect(ok.detail).toContain(`key id ${files.manifestKeyId}`);
  });
});
