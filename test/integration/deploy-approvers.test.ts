import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/config';
import { checkRestoreApprovals } from '../../src/doctor/signing';

/**
 * The allowed-signers files the Kubernetes manifests ship (deploy-manifests.test.ts proves they are
 * what the worker mounts at DBOPS_APPROVERS_FILE), checked with the real ssh-keygen the worker runs:
 * as shipped they verify no signature, so a worker deployed without real keys refuses every
 * decision; a line added as their comments say verifies.
 */
const run = promisify(execFile);
const K8S = path.join(REPO_ROOT, 'deploy', 'k8s');
let tmp: string;
let key: string;
let statement: string;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'dbops-deploy-approvers-'));
  key = path.join(tmp, 'carol_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'carol', '-f', key]);
  statement = path.join(tmp, 'statement.json');
  writeFileSync(statement, '{"decision":"approve","workflowId":"restore/recsys/x"}');
  await run('ssh-keygen', ['-Y', 'sign', '-n', 'dbops-restore', '-f', key, statement]);
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** `ssh-keygen -Y verify` of carol's signed statement against `file` for `principal`, as the worker runs it. */
async function verify(file: string, principal: string): Promise<{ code: number; out: string }> {
  const script = 'ssh-keygen -Y verify -f "$1" -I "$2" -n dbops-restore -s "$3.sig" < "$3"';
  return run('bash', ['-c', script, 'verify', file, principal, statement]).then(
    (r) => ({ code: 0, out: `${r.stdout}${r.stderr}` }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      out: `${e.stdout}${e.stderr}`,
    }),
  );
}

async function findPrincipals(file: string): Promise<number> {
  return run('ssh-keygen', ['-Y', 'find-principals', '-f', file, '-s', `${statement}.sig`]).then(
    () => 0,
    (e: { code: number }) => e.code,
  );
}

describe('the allowed-signers files shipped in deploy/k8s', () => {
  it('base lists nobody: no signature verifies and dbops doctor fails the row', async () => {
    const file = path.join(K8S, 'base', 'allowed_signers');
    expect(readFileSync(file, 'utf8')).toContain('The base lists nobody');
    expect(await findPrincipals(file)).toBe(255);
    expect((await verify(file, 'carol@example.com')).code).not.toBe(0);
    const doctor = await checkRestoreApprovals(file, process.env.PATH);
    expect(doctor.status).toBe('fail');
    expect(doctor.detail).toBe(
      `${file} lists no valid signer (no key lines): the worker refuses every signed decision`,
    );
  });

  it("the example's placeholder signers verify nothing; a real key line added as it says does", async () => {
    const content = readFileSync(path.join(K8S, 'overlays', 'example', 'allowed_signers'), 'utf8');
    expect(content).toMatch(/^alice@example\.com namespaces="dbops-restore" ssh-ed25519 REPLACE_\w+$/m);
    expect(content).toMatch(/^# PLACEHOLDERS BELOW: replace them with your approvers' real public keys/m);
    const file = path.join(tmp, 'allowed_signers');
    writeFileSync(file, content);

    // As shipped: no principal matches any signature, so the worker refuses every decision ...
    expect(await findPrincipals(file)).toBe(255);
    const refused = await verify(file, 'alice@example.com');
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain('invalid key');
    // ... and dbops doctor fails the row, naming each placeholder line.
    const doctor = await checkRestoreApprovals(file, process.env.PATH);
    expect(doctor.status).toBe('fail');
    const placeholderLines = content
      .split('\n')
      .flatMap((l, i) => (/REPLACE_/.test(l) && !l.startsWith('#') ? [i + 1] : []));
    expect(placeholderLines.length).toBeGreaterThan(0);
    for (const n of placeholderLines)
      expect(doctor.detail).toContain(`line ${n}: not a valid ssh-ed25519 public key`);

    // With a real line added, the same signature verifies for its principal.
    const pub = readFileSync(`${key}.pub`, 'utf8').trim();
    writeFileSync(file, `${content.trimEnd()}\ncarol@example.com namespaces="dbops-restore" ${pub}\n`);
    const accepted = await verify(file, 'carol@example.com');
    expect(accepted.out).toMatch(
      /^Good "dbops-restore" signature for carol@example\.com with ED25519 key SHA256:/m,
    );
    expect(accepted.code).toBe(0);
    const stillPlaceholders = await checkRestoreApprovals(file, process.env.PATH);
    expect(stillPlaceholders.status).toBe('warn'); // carol can sign; the placeholder lines are named
    expect(stillPlaceholders.detail).toContain('1 principal (carol@example.com) with 1 key can sign');
  });
});
