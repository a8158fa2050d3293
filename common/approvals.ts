/**
 * Restore decisions: the statements operators sign, the worker's policy, and the rules a decision
 * must pass. Workflow-safe (no Node built-ins): the CLI builds and signs statements, the worker's
 * activity proves the signature (ssh-keygen -Y verify), the workflow checks what was signed.
 */
import { canonicalJson } from './canonical-hash';

/** The `-n` namespace of every dbops signature: a key's signature for git or a file is never a decision. */
export const SIGNATURE_NAMESPACE = 'dbops-restore';
/** A signed statement older than this is refused (a decision is signed just before it is sent). */
export const STATEMENT_MAX_AGE_MS = 5 * 60_000;
/** A statement signed this far "in the future" is accepted (clock skew between laptop and worker). */
export const STATEMENT_MAX_SKEW_MS = 60_000;

/** What an operator signs; `workflowId` binds it to one run, `signedAt` to a few minutes. */
export type Statement =
  | {
      readonly kind: 'restore-request';
      readonly workflowId: string;
      readonly backup: string;
      readonly target: string;
      readonly signedAt: string;
    }
  | {
      readonly kind: 'restore-decision';
      readonly workflowId: string;
      readonly planHash: string;
      readonly decision: 'approve' | 'reject';
      readonly comment: string | null;
      readonly signedAt: string;
    }
  | {
      readonly kind: 'rollback';
      readonly workflowId: string;
      readonly restoreWorkflowId: string;
      readonly target: string;
      readonly preRestoreDatabase: string;
      readonly signedAt: string;
    };

/** A statement's exact bytes (canonical JSON) and its armored OpenSSH signature. Not secret. */
export interface SignedStatement {
  readonly statement: string;
  readonly signature: string;
}

const VERSION = 'dbops-statement/1';

/** The bytes that are signed: canonical JSON, so the CLI and the worker agree on every byte. */
export function statementText(statement: Statement): string {
  return canonicalJson({ version: VERSION, ...statement });
}

const FIELDS: Record<Statement['kind'], readonly string[]> = {
  'restore-request': ['workflowId', 'backup', 'target', 'signedAt'],
  'restore-decision': ['workflowId', 'planHash', 'decision', 'signedAt'],
  rollback: ['workflowId', 'restoreWorkflowId', 'target', 'preRestoreDatabase', 'signedAt'],
};

/** Parses signed bytes back into a statement; a string says why they are not one. */
export function parseStatement(text: string): Statement | string {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return 'the signed statement is not JSON';
  }
  if (!v || typeof v !== 'object' || v.version !== VERSION)
    return `the signed statement is not a ${VERSION} statement`;
  const fields = FIELDS[v.kind as Statement['kind']];
  if (!fields) return `the signed statement has unknown kind ${JSON.stringify(v.kind)}`;
  const missing = fields.find((f) => typeof v[f] !== 'string');
  if (missing) return `the signed statement has no ${missing}`;
  if (canonicalJson(v) !== text) return 'the signed statement is not in canonical form';
  const { version: _version, ...statement } = v;
  return statement as unknown as Statement;
}

/**
 * Why a signed statement cannot be used here, or undefined: of another kind, for another workflow,
 * plan, decision or database (a replay), or signed outside the window around `now`.
 */
export function statementProblem(
  text: string,
  expected: Partial<Statement> & Pick<Statement, 'kind' | 'workflowId'>,
  now: number,
): string | undefined {
  const s = parseStatement(text);
  if (typeof s === 'string') return s;
  for (const [key, want] of Object.entries(expected)) {
    const got = (s as unknown as Record<string, unknown>)[key];
    if (got !== want) {
      return key === 'workflowId'
        ? `the signature is for workflow ${JSON.stringify(got)}, not ${want}: a statement signed for one run is never accepted by another`
        : `the signed statement says ${key} ${JSON.stringify(got)}, the request says ${JSON.stringify(want)}`;
    }
  }
  const signedAt = Date.parse(s.signedAt);
  if (Number.isNaN(signedAt))
    return `the signed statement's time ${JSON.stringify(s.signedAt)} is not a time`;
  if (signedAt < now - STATEMENT_MAX_AGE_MS) {
    return `the signature is stale: signed at ${s.signedAt}, more than ${STATEMENT_MAX_AGE_MS / 60_000} minutes before the worker saw it; sign again (run the command again)`;
  }
  if (signedAt > now + STATEMENT_MAX_SKEW_MS) {
    return `the signature is dated ${s.signedAt}, in the future of the worker's clock by more than ${STATEMENT_MAX_SKEW_MS / 1000} s; fix the signer's clock`;
  }
  return undefined;
}

/** Who a verified signature belongs to: the principal found in the allowed-signers file, and the key. */
export interface Signer {
  readonly principal: string;
  readonly fingerprint: string;
}

// ---------------------------------------------------------------------------------------------
// Policy: the worker's settings, read by the workflow through an activity. The requester's input
// may ask for more care (four-eyes, longer keeping, a shorter wait), never for less.

export interface RestorePolicy {
  /** DBOPS_APPROVERS_FILE is set: requests and decisions must carry a signature by an allowed signer. */
  readonly signaturesRequired: boolean;
  readonly fourEyes: boolean;
  /** The least number of days a replaced database is kept (DBOPS_RESTORE_KEEP_DAYS). */
  readonly keepDays: number;
  /** The longest a restore waits for its decision (DBOPS_RESTORE_APPROVAL_TIMEOUT). */
  readonly approvalTimeoutMs: number;
  /** DBOPS_DATABASES: targets a restore may replace without --allow-unlisted-target. */
  readonly databases: readonly string[];
}

/** What the requester may ask for; each is only ever taken when it is stricter than the policy. */
export interface PolicyRequest {
  readonly fourEyes?: boolean;
  readonly keepDays?: number;
  readonly approvalTimeoutMs?: number;
}

export interface EffectivePolicy {
  readonly signaturesRequired: boolean;
  readonly fourEyes: boolean;
  readonly keepDays: number;
  readonly approvalTimeoutMs: number;
}

export function effectivePolicy(policy: RestorePolicy, request: PolicyRequest): EffectivePolicy {
  const asked = (n: number | undefined) => (typeof n === 'number' && Number.isFinite(n) ? n : undefined);
  return {
    signaturesRequired: policy.signaturesRequired,
    fourEyes: policy.fourEyes || request.fourEyes === true,
    keepDays: Math.max(policy.keepDays, asked(request.keepDays) ?? 0),
    approvalTimeoutMs: Math.max(
      1000,
      Math.min(policy.approvalTimeoutMs, asked(request.approvalTimeoutMs) ?? Infinity),
    ),
  };
}

/** Why `target` is not a database this worker restores into without the explicit flag, or undefined. */
export function unlistedTargetProblem(
  target: string,
  policy: RestorePolicy,
  allowUnlisted: boolean | undefined,
): string | undefined {
  if (allowUnlisted === true || policy.databases.includes(target)) return undefined;
  return `${target} is not one of the databases this worker manages (DBOPS_DATABASES: ${policy.databases.join(', ')}): restoring over another application's database needs --allow-unlisted-target`;
}

// ---------------------------------------------------------------------------------------------
// Decisions

export interface ApprovalRequest {
  readonly decision: 'approve' | 'reject';
  /** Who decides, as typed (--as): the identity only where the worker does not require signatures. */
  readonly by: string;
  readonly comment?: string;
  /** The hash of the plan being approved (from `dbops restore status`). */
  readonly planHash: string;
  /** The decision statement signed by the approver (required when the worker requires signatures). */
  readonly signed?: SignedStatement;
}

export interface ApprovalRecord {
  readonly decision: 'approve' | 'reject';
  /** The signer's principal when signed, else the name typed. */
  readonly by: string;
  readonly comment?: string;
  readonly planHash: string;
  /** When the workflow accepted the decision (workflow time, ISO). */
  readonly at: string;
  readonly via: 'update' | 'signal';
  /** The proven signer (key fingerprint) of a signed decision; null when unsigned. */
  readonly signer: Signer | null;
}

export interface ApprovalRules {
  readonly workflowId: string;
  /** The requester's principal (signed) or name. */
  readonly requestedBy: string;
  readonly fourEyes: boolean;
  readonly signaturesRequired: boolean;
  readonly planHash: string | undefined;
  readonly decided: ApprovalRecord | undefined;
  readonly awaiting: boolean;
}

const norm = (s: string) => s.trim().toLowerCase();

/**
 * Why a decision is refused before its signature is checked, or undefined. Used by the Update
 * validator and the signal; the signature, its freshness and four-eyes on the proven principal
 * follow in decisionProblem once the worker has verified it.
 */
export function approvalProblem(request: ApprovalRequest, rules: ApprovalRules): string | undefined {
  if (!request || (request.decision !== 'approve' && request.decision !== 'reject')) {
    return 'decision must be "approve" or "reject"';
  }
  if (!request.signed && (typeof request.by !== 'string' || request.by.trim() === ''))
    return "the approver's name is required (--as NAME)";
  if (rules.decided) {
    return `already decided: ${rules.decided.decision} by ${rules.decided.by} at ${rules.decided.at}`;
  }
  if (!rules.awaiting || rules.planHash === undefined) return 'the restore is not waiting for approval';
  if (request.planHash !== rules.planHash) {
    return `plan hash ${JSON.stringify(request.planHash)} does not match the plan waiting for approval (${rules.planHash}): review the current plan with "dbops restore status ${rules.workflowId}"`;
  }
  if (rules.signaturesRequired && !request.signed) {
    return `unsigned ${request.decision}: this worker requires signed decisions (DBOPS_APPROVERS_FILE); run "dbops restore ${request.decision} ${rules.workflowId} --plan-hash ${rules.planHash} --key <your SSH key>"`;
  }
  if (request.signed && rules.signaturesRequired) {
    const p = parseStatement(request.signed.statement);
    if (typeof p === 'string') return p;
  }
  // Unsigned (the dev stack): the typed names are all there is to compare.
  if (!rules.signaturesRequired) return fourEyesProblem(request.decision, request.by, rules);
  return undefined;
}

/** The requester may not approve their own restore under four-eyes (names or principals compared). */
export function fourEyesProblem(
  decision: ApprovalRequest['decision'],
  by: string,
  rules: Pick<ApprovalRules, 'fourEyes' | 'requestedBy'>,
): string | undefined {
  if (rules.fourEyes && decision === 'approve' && norm(by) === norm(rules.requestedBy)) {
    return `four-eyes rule: ${by} requested this restore and cannot approve it; ask someone else`;
  }
  return undefined;
}

/** A signed decision after its signature was proven: bound to this run, plan and decision, fresh, four-eyes. */
export function signedDecisionProblem(
  request: ApprovalRequest & { signed: SignedStatement },
  signer: Signer,
  rules: ApprovalRules,
  now: number,
): string | undefined {
  return (
    statementProblem(
      request.signed.statement,
      {
        kind: 'restore-decision',
        workflowId: rules.workflowId,
        planHash: request.planHash,
        decision: request.decision,
        comment: request.comment ?? null,
      },
      now,
    ) ?? fourEyesProblem(request.decision, signer.principal, rules)
  );
}

/** Text of a decision for Slack and the CLI: `approved by alice (SHA256:…)`. */
export function signedBy(record: Pick<ApprovalRecord, 'by' | 'signer'>): string {
  return record.signer
    ? `${record.by} (signed, key ${record.signer.fingerprint})`
    : `${record.by} (unsigned)`;
}
