import { describe, expect, it } from 'vitest';
import {
  type ApprovalRules,
  approvalProblem,
  effectivePolicy,
  parseStatement,
  type RestorePolicy,
  signedDecisionProblem,
  STATEMENT_MAX_AGE_MS,
  statementProblem,
  statementText,
  unlistedTargetProblem,
} from '../../common/approvals';

const now = Date.parse('2026-12-04T12:00:00.000Z');
const rules: ApprovalRules = {
  workflowId: 'restore-recsys-1',
  requestedBy: 'alice',
  fourEyes: true,
  signaturesRequired: false,
  planHash: 'h1',
  decided: undefined,
  awaiting: true,
};
const decision = (over: Record<string, unknown> = {}) =>
  statementText({
    kind: 'restore-decision',
    workflowId: 'restore-recsys-1',
    planHash: 'h1',
    decision: 'approve',
    comment: null,
    signedAt: new Date(now - 1000).toISOString(),
    ...over,
  } as never);
const signed = (statement: string) => ({ statement, signature: 'sig' });

describe('approval rules (unsigned)', () => {
  it('accepts a proper approval and rejection', () => {
    expect(approvalProblem({ decision: 'approve', by: 'bob', planHash: 'h1' }, rules)).toBeUndefined();
    expect(approvalProblem({ decision: 'reject', by: 'alice', planHash: 'h1' }, rules)).toBeUndefined();
  });
  it('refuses wrong hash, four-eyes, decided, not waiting, missing name', () => {
    expect(approvalProblem({ decision: 'approve', by: 'bob', planHash: 'h2' }, rules)).toMatch(
      /does not match the plan waiting.*dbops restore status restore-recsys-1/,
    );
    expect(approvalProblem({ decision: 'approve', by: ' Alice ', planHash: 'h1' }, rules)).toMatch(
      /four-eyes/,
    );
    expect(
      approvalProblem({ decision: 'approve', by: 'alice', planHash: 'h1' }, { ...rules, fourEyes: false }),
    ).toBeUndefined();
    const decided = {
      decision: 'reject' as const,
      by: 'carol',
      planHash: 'h1',
      at: 'then',
      via: 'update' as const,
      signer: null,
    };
    expect(
      approvalProblem({ decision: 'approve', by: 'bob', planHash: 'h1' }, { ...rules, decided }),
    ).toMatch(/already decided: reject by carol/);
    expect(
      approvalProblem({ decision: 'approve', by: 'bob', planHash: 'h1' }, { ...rules, awaiting: false }),
    ).toMatch(/not waiting/);
    expect(approvalProblem({ decision: 'approve', by: '  ', planHash: 'h1' }, rules)).toMatch(
      /name is required/,
    );
    expect(approvalProblem({ decision: 'maybe' as 'approve', by: 'bob', planHash: 'h1' }, rules)).toMatch(
      /approve.*reject/,
    );
  });
});

describe('approval rules (signatures required)', () => {
  const strict = { ...rules, signaturesRequired: true };
  it('refuses an unsigned decision naming --key', () => {
    expect(approvalProblem({ decision: 'approve', by: 'bob', planHash: 'h1' }, strict)).toMatch(
      /unsigned approve: this worker requires signed decisions.*--plan-hash h1 --key/,
    );
  });
  it('binds a signed decision to its run, plan, decision and comment, and to a few minutes', () => {
    const signer = { principal: 'bob', fingerprint: 'SHA256:x' };
    const req = { decision: 'approve' as const, by: 'ignored', planHash: 'h1' };
    expect(
      signedDecisionProblem({ ...req, signed: signed(decision()) }, signer, strict, now),
    ).toBeUndefined();
    expect(
      signedDecisionProblem(
        { ...req, signed: signed(decision({ workflowId: 'restore-other' })) },
        signer,
        strict,
        now,
      ),
    ).toMatch(/signature is for workflow "restore-other", not restore-recsys-1/);
    expect(
      signedDecisionProblem({ ...req, signed: signed(decision({ planHash: 'h0' })) }, signer, strict, now),
    ).toMatch(/says planHash "h0"/);
    expect(
      signedDecisionProblem(
        { ...req, signed: signed(decision({ decision: 'reject' })) },
        signer,
        strict,
        now,
      ),
    ).toMatch(/says decision "reject"/);
    expect(
      signedDecisionProblem(
        {
          ...req,
          signed: signed(decision({ signedAt: new Date(now - STATEMENT_MAX_AGE_MS - 1).toISOString() })),
        },
        signer,
        strict,
        now,
      ),
    ).toMatch(/signature is stale/);
    expect(
      signedDecisionProblem(
        { ...req, signed: signed(decision({ signedAt: new Date(now + 5 * 60_000).toISOString() })) },
        signer,
        strict,
        now,
      ),
    ).toMatch(/in the future/);
  });
  it('four-eyes compares the proven principal, whatever name was typed', () => {
    const req = { decision: 'approve' as const, by: 'bob', planHash: 'h1', signed: signed(decision()) };
    expect(signedDecisionProblem(req, { principal: 'Alice', fingerprint: 'SHA256:k2' }, strict, now)).toMatch(
      /four-eyes rule: Alice requested this restore/,
    );
  });
});

describe('statements', () => {
  it('round-trips and refuses what is not a canonical statement', () => {
    const text = decision();
    expect(parseStatement(text)).toMatchObject({ kind: 'restore-decision', planHash: 'h1' });
    expect(parseStatement('not json')).toMatch(/not JSON/);
    expect(parseStatement(JSON.stringify({ version: 'x' }))).toMatch(/not a dbops-statement\/1/);
    const reordered = JSON.stringify({ ...JSON.parse(text), version: 'dbops-statement/1' }, null, 1);
    expect(parseStatement(reordered)).toMatch(/canonical/);
    expect(statementProblem(text, { kind: 'rollback', workflowId: 'restore-recsys-1' }, now)).toMatch(
      /kind "restore-decision"/,
    );
  });
});

describe('policy', () => {
  const policy: RestorePolicy = {
    signaturesRequired: true,
    fourEyes: true,
    keepDays: 7,
    approvalTimeoutMs: 86_400_000,
    databases: ['recsys'],
  };
  it('a request may ask for more care, never for less', () => {
    expect(
      effectivePolicy(policy, { fourEyes: false, keepDays: 0, approvalTimeoutMs: 10 * 86_400_000 }),
    ).toEqual({
      signaturesRequired: true,
      fourEyes: true,
      keepDays: 7,
      approvalTimeoutMs: 86_400_000,
    });
    expect(
      effectivePolicy(
        { ...policy, fourEyes: false },
        { fourEyes: true, keepDays: 30, approvalTimeoutMs: 60_000 },
      ),
    ).toMatchObject({ fourEyes: true, keepDays: 30, approvalTimeoutMs: 60_000 });
  });
  it('guards targets outside DBOPS_DATABASES unless the flag says so', () => {
    expect(unlistedTargetProblem('recsys', policy, undefined)).toBeUndefined();
    expect(unlistedTargetProblem('billing', policy, undefined)).toMatch(
      /billing is not one of the databases.*--allow-unlisted-target/,
    );
    expect(unlistedTargetProblem('billing', policy, true)).toBeUndefined();
  });
});
