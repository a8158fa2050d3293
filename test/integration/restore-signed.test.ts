import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest, Statement } from '../../common/approvals';
import { rootMessage, failureTypeOf } from '../../common/failures';
import { restoreRollbackWorkflowId, restoreWorkflowId } from '../../common/ids';
import type {
  RestoreResult,
  RestoreStatus,
  RestoreWorkflowInput,
  RollbackResult,
} from '../../common/restore';
import { DBOPS_DATABASE, DBOPS_OPERATION, DBOPS_PHASE } from '../../common/search-attributes';
import { restoreHandle, sendDecision } from '../../src/client/restore';
import { rollbackRestore } from '../../src/client/restore-rollback';
import { findSigningKey, signStatement } from '../../src/client/signing';
import { restoreStatusQuery } from '../../workflows/restore-messages';
import { verifySignedStatement } from '../../activities/approvals/signatures';
import { dbops } from '../drills/kit/dbops-cli';
import { testConfig, uniqueSuffix } from '../helpers/stack';
import { startTestWorker, type TestWorker } from '../helpers/worker';
import {
  databasesLike,
  dropDatabasesLike,
  fingerprint,
  populate,
  sql,
  takeBackup,
  waitFor,
} from './restore-fixtures';

// Real OpenSSH keys and a real allowed-signers file: alice has two keys (one principal), bob one;
// mallory's key is not listed.
const keys = mkdtempSync(path.join(os.tmpdir(), 'dbops-signers-'));
const key = (name: string) => path.join(keys, name);
for (const name of ['alice', 'alice2', 'bob', 'mallory']) {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key(name)]);
}
const pub = (name: string) => readFileSync(`${key(name)}.pub`, 'utf8').trim();
const fingerprintOf = (name: string) =>
  /(SHA256:\S+)/.exec(execFileSync('ssh-keygen', ['-l', '-f', `${key(name)}.pub`], { encoding: 'utf8' }))![1];
const approvers = path.join(keys, 'allowed_signers');
writeFileSync(
  approvers,
  ['# dbops approvers', `alice ${pub('alice')}`, `alice ${pub('alice2')}`, `bob ${pub('bob')}`, ''].join(
    '\n',
  ),
);

const suffix = uniqueSuffix();
const db = `t_signed_${suffix}`;
const backupDir = path.join(os.tmpdir(), `t_signed_${suffix}`);
// The worker's policy: signatures (the approvers file), four-eyes, 7 days' keeping, 1 h approval wait.
const config = testConfig({
  DBOPS_TASK_QUEUE: `test-signed-${suffix}`,
  DBOPS_BACKUP_DIR: backupDir,
  DBOPS_DATABASES: db,
  DBOPS_APPROVERS_FILE: approvers,
  DBOPS_RESTORE_FOUR_EYES: 'true',
  DBOPS_RESTORE_KEEP_DAYS: '7',
  DBOPS_RESTORE_APPROVAL_TIMEOUT: '1h',
});
let tw: TestWorker;
let backupId: string;
let seq = 0;

async function sign(signer: string, statement: Statement) {
  const k = (await findSigningKey(key(signer)))!;
  return signStatement(statement, k);
}

/** Starts a restore as `signer` would with `dbops restore` (or unsigned), with extra input a requester might try. */
async function start(signer: string | undefined, extra: Partial<RestoreWorkflowInput> = {}) {
  const workflowId = `${restoreWorkflowId(db, new Date())}-${seq++}`;
  const request = signer
    ? await sign(signer, {
        kind: 'restore-request',
        workflowId,
        backup: backupId,
        target: db,
        signedAt: new Date().toISOString(),
      })
    : undefined;
  return tw.client.workflow.start('restoreWorkflow', {
    taskQueue: config.temporal.taskQueue,
    workflowId,
    args: [
      {
        backup: backupId,
        target: db,
        requestedBy: 'somebody',
        jobs: 2,
        maximumAttempts: 1,
        ...(request && { request }),
        ...extra,
      } satisfies RestoreWorkflowInput,
    ],
    typedSearchAttributes: [
      { key: DBOPS_OPERATION, value: 'restore' },
      { key: DBOPS_DATABASE, value: db },
      { key: DBOPS_PHASE, value: 'resolving' },
    ],
  });
}

async function awaiting(handle: WorkflowHandle): Promise<RestoreStatus> {
  return waitFor('awaiting-approval', async () => {
    const s = await handle.query(restoreStatusQuery);
    return s.phase === 'awaiting-approval' ? s : undefined;
  });
}

const decisionOf = (workflowId: string, planHash: string, over: Partial<Statement> = {}) =>
  ({
    kind: 'restore-decision',
    workflowId,
    planHash,
    decision: 'approve',
    comment: null,
    signedAt: new Date().toISOString(),
    ...over,
  }) as Statement;

/** Sends a decision and returns the refusal's message (fails the test when it is accepted). */
async function refusal(handle: WorkflowHandle, request: ApprovalRequest): Promise<string> {
  const err = await sendDecision(restoreHandle(tw.client, handle.workflowId), request).then(
    (r) => new Error(`accepted: ${JSON.stringify(r)}`),
    (e: unknown) => e as Error,
  );
  expect(failureTypeOf(err), err.message).toBe('Refused');
  return rootMessage(err);
}

beforeAll(async () => {
  await populate(config, db, 2000);
  tw = await startTestWorker(config);
  backupId = (await takeBackup(tw.client, config, db)).backupId;
}, 120_000);

afterAll(async () => {
  await tw?.stop();
  await dropDatabasesLike(config, db);
  rmSync(backupDir, { recursive: true, force: true });
  rmSync(keys, { recursive: true, force: true });
});

describe('signed restore decisions (ssh-keygen -Y, DBOPS_APPROVERS_FILE)', () => {
  it('a key listed for two people, or a missing approvers file, proves nobody', async () => {
    const shared = path.join(keys, 'shared_signers');
    writeFileSync(shared, `carol,dave ${pub('mallory')}\n`);
    const statement = decisionOf('restore-x', 'h1');
    const signed = await sign('mallory', statement);
    await expect(verifySignedStatement(shared, signed)).rejects.toThrow(
      /the key is listed for 2 principals \(carol, dave\).*list each key under exactly one person/,
    );
    await expect(verifySignedStatement(path.join(keys, 'absent'), signed)).rejects.toThrow(
      /DBOPS_APPROVERS_FILE=.*absent cannot be read/,
    );
    expect(await verifySignedStatement(approvers, await sign('bob', statement))).toEqual({
      principal: 'bob',
      fingerprint: fingerprintOf('bob'),
    });
  });

  it('an unsigned restore request is refused before anything is read', async () => {
    const handle = await start(undefined);
    const err = await handle.result().catch((e: unknown) => e as WorkflowFailedError);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(rootMessage(err)).toMatch(/unsigned restore request: this worker requires signed requests.*--key/);
  });

  it('a request from a key not in the file is refused', async () => {
    const handle = await start('mallory');
    expect(rootMessage(await handle.result().catch((e: unknown) => e))).toMatch(
      /signing key is not in the allowed-signers file/,
    );
  });

  it('refuses every forged, replayed, stale or self approval; an allowed signer approves; rollback is signed too', async () => {
    const backedUp = await fingerprint(config, db);
    await sql(config, db, 'DELETE FROM users WHERE id % 3 = 0');
    const changed = await fingerprint(config, db);
    // The requester asks for less care than the worker's policy: ignored.
    const handle = await start('alice', { fourEyes: false, keepDays: 0, approvalTimeoutMs: 30 * 86_400_000 });
    const s = await awaiting(handle);
    expect(s.requestedBy).toBe('alice');
    expect(s.requester?.fingerprint).toBe(fingerprintOf('alice'));
    expect(s.policy).toEqual({
      signaturesRequired: true,
      fourEyes: true,
      keepDays: 7,
      approvalTimeoutMs: 3_600_000,
    });
    expect(s.plan?.keepDays).toBe(7);
    expect(Date.parse(s.approvalDeadline!) - Date.parse(s.waitingSince!)).toBe(3_600_000);
    const hash = s.planHash!;
    const id = handle.workflowId;

    // The Web UI: current details name the phase, plan hash and the approve command; DbopsPhase filters.
    const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(meta.currentDetails).toContain(`dbops restore approve ${id} --plan-hash ${hash}`);
    expect(meta.currentDetails).toMatch(/Requested by alice \(signed, key SHA256:/);
    expect((await handle.describe()).typedSearchAttributes.get(DBOPS_PHASE)).toBe('awaiting-approval');
    await waitFor('the visibility listing', async () => {
      for await (const w of tw.client.workflow.list({
        query: `DbopsPhase = "awaiting-approval" AND WorkflowId = "${id}"`,
      }))
        return w.workflowId;
      return undefined;
    });

    // A second restore of the same target is refused naming this one.
    const second = await start('bob');
    expect(rootMessage(await second.result().catch((e: unknown) => e))).toMatch(
      new RegExp(`${db} is already being restored or rolled back by ${id}`),
    );

    const bobSigned = (over: Partial<Statement> = {}) => sign('bob', decisionOf(id, hash, over));
    expect(await refusal(handle, { decision: 'approve', by: 'bob', planHash: hash })).toMatch(
      /unsigned approve: this worker requires signed decisions/,
    );
    expect(
      await refusal(handle, {
        decision: 'approve',
        by: 'mallory',
        planHash: hash,
        signed: await sign('mallory', decisionOf(id, hash)),
      }),
    ).toMatch(/signing key is not in the allowed-signers file/);
    expect(
      await refusal(handle, {
        decision: 'approve',
        by: 'bob',
        planHash: hash,
        signed: await bobSigned({ workflowId: `${id}-other` }),
      }),
    ).toMatch(/signature is for workflow ".*-other", not/);
    expect(
      await refusal(handle, {
        decision: 'approve',
        by: 'bob',
        planHash: hash,
        signed: await bobSigned({ signedAt: new Date(Date.now() - 10 * 60_000).toISOString() }),
      }),
    ).toMatch(/signature is stale/);
    expect(
      await refusal(handle, { decision: 'approve', by: 'bob', planHash: 'f00', signed: await bobSigned() }),
    ).toMatch(/plan hash "f00" does not match the plan waiting/);
    expect(
      await refusal(handle, {
        decision: 'approve',
        by: 'bob',
        planHash: hash,
        signed: await bobSigned({ planHash: 'f00' }),
      }),
    ).toMatch(/says planHash "f00"/);
    // A statement altered after signing: the signature no longer matches.
    const genuine = await bobSigned();
    const altered = { ...genuine, statement: genuine.statement.replace('"approve"', '"reject"') };
    expect(await refusal(handle, { decision: 'reject', by: 'bob', planHash: hash, signed: altered })).toMatch(
      /signature does not match the statement/,
    );
    // alice's second key is still alice: four-eyes holds.
    expect(
      await refusal(handle, {
        decision: 'approve',
        by: 'carol',
        planHash: hash,
        signed: await sign('alice2', decisionOf(id, hash)),
      }),
    ).toMatch(/four-eyes rule: alice requested this restore/);

    const record = await sendDecision(restoreHandle(tw.client, id), {
      decision: 'approve',
      by: 'typed name is ignored',
      comment: 'incident 7',
      planHash: hash,
      signed: await sign('bob', decisionOf(id, hash, { comment: 'incident 7' })),
    });
    expect(record).toMatchObject({
      decision: 'approve',
      by: 'bob',
      signer: { fingerprint: fingerprintOf('bob') },
    });
    const result: RestoreResult = await handle.result();
    expect(result.outcome).toBe('restored');
    expect(result.approval?.by).toBe('bob');
    expect(await fingerprint(config, db)).toEqual(backedUp);

    // Rollback: unsigned is refused; a look-alike copy is refused; the signed one swaps back.
    const pre = result.preRestoreDatabase!;
    const rollbackId = restoreRollbackWorkflowId(id);
    const unsigned = await tw.client.workflow
      .execute('restoreRollbackWorkflow', {
        taskQueue: config.temporal.taskQueue,
        workflowId: rollbackId,
        args: [{ target: db, preRestoreDatabase: pre, restoreWorkflowId: id, requestedBy: 'bob' }],
      })
      .catch((e: unknown) => e);
    expect(rootMessage(unsigned)).toMatch(/unsigned rollback: this worker requires signed decisions/);
    const lookAlike = `${db}__pre_restore_20200101000000`;
    await sql(config, undefined, `CREATE DATABASE ${lookAlike} TEMPLATE ${db}`);
    const forged = await tw.client.workflow
      .execute('restoreRollbackWorkflow', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `${rollbackId}-look-alike`,
        args: [
          {
            target: db,
            preRestoreDatabase: lookAlike,
            restoreWorkflowId: id,
            signed: await sign('bob', {
              kind: 'rollback',
              workflowId: `${rollbackId}-look-alike`,
              restoreWorkflowId: id,
              target: db,
              preRestoreDatabase: lookAlike,
              signedAt: new Date().toISOString(),
            }),
          },
        ],
      })
      .catch((e: unknown) => e);
    expect(rootMessage(forged)).toMatch(/does not carry the mark of the copy .* kept by workflow/);
    expect(await databasesLike(config, lookAlike)).toEqual([lookAlike]);

    const rolledBack: RollbackResult = await rollbackRestore(tw.client, config, id, {
      requestedBy: 'ignored',
      key: key('bob'),
    });
    expect(rolledBack).toMatchObject({ by: 'bob', signer: { fingerprint: fingerprintOf('bob') } });
    expect(await fingerprint(config, db)).toEqual(changed);
  }, 120_000);

  it('the CLI flow: signed request, approve refused without the plan hash (showing the plan), signed approve and rollback', async () => {
    const env = {
      DBOPS_TEMPORAL_NAMESPACE: config.temporal.namespace,
      DBOPS_TASK_QUEUE: config.temporal.taskQueue,
      DBOPS_BACKUP_DIR: backupDir,
      DBOPS_DATABASES: db,
    };
    const started = await dbops(env, 'restore', backupId, '--target', db, '--key', key('alice'), '--json');
    expect(started.code, started.stderr).toBe(0);
    const { workflowId, status } = JSON.parse(started.stdout) as {
      workflowId: string;
      status: RestoreStatus;
    };
    expect(status).toMatchObject({ phase: 'awaiting-approval', requestedBy: 'alice' });

    const blind = await dbops(env, 'restore', 'approve', workflowId, '--key', key('bob'));
    expect(blind.code).toBe(2);
    expect(blind.stderr).toContain('--plan-hash is required');
    expect(blind.stderr).toContain(`Plan hash: ${status.planHash}`);
    expect(blind.stderr).toContain(`dbops restore approve ${workflowId} --plan-hash ${status.planHash}`);

    const approved = await dbops(
      env,
      'restore',
      'approve',
      workflowId,
      '--key',
      key('bob'),
      '--plan-hash',
      status.planHash!,
    );
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`approved by bob (signed, key ${fingerprintOf('bob')})`);
    const result: RestoreResult = await tw.client.workflow.getHandle(workflowId).result();
    expect(result.outcome).toBe('restored');

    const rolledBack = await dbops(env, 'restore', 'rollback', workflowId, '--key', key('alice'));
    expect(rolledBack.code, rolledBack.stderr).toBe(0);
    expect(rolledBack.stdout).toMatch(
      /is back to .*__pre_restore_\d{14}.*decided by alice \(signed, key SHA256:/,
    );
  }, 120_000);
});
