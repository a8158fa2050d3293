import { readFile } from 'node:fs/promises';
import { loadManifestKey, type ManifestKey } from '../../activities/storage/manifest-key';
import { SIGNATURE_NAMESPACE } from '../../common/approvals';
import { plural } from '../../common/text';
import { parseAllowedSigners, type LineProblem } from './allowed-signers';
import { findOnPath, fingerprint, signAndVerifyProbe } from './ssh-keygen';
import type { Check, CheckOutcome } from './types';

/**
 * The doctor rows of signed restore approvals (DBOPS_APPROVERS_FILE, proven with OpenSSH's
 * ssh-keygen on the worker) and signed manifests (DBOPS_MANIFEST_KEY, Ed25519 via node:crypto).
 */

const SIGNED_APPROVALS = `README "Signed approvals"`;
const ADD_SIGNER = `add one line per approver: <principal> namespaces="${SIGNATURE_NAMESPACE}" <their public key> (e.g. the contents of ~/.ssh/id_ed25519.pub); ${SIGNED_APPROVALS}`;
const GENERATE_MANIFEST_KEY = 'openssl genpkey -algorithm ed25519 -out manifest-key.pem';

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function listProblems(problems: readonly LineProblem[]): string {
  const shown = problems.slice(0, 8).map((p) => `line ${p.line}: ${p.problem}`);
  if (problems.length > shown.length) shown.push(`${problems.length - shown.length} more`);
  return shown.join('; ');
}

/**
 * The "restore approvals" row. Unset: a warning (the dev stack's default, unsigned names). Set: the
 * file must be readable, ssh-keygen must be on `searchPath` and able to sign and verify as this
 * user, and at least one line must name a valid key that may sign restore decisions now. Lines that
 * cannot are a warning naming each: an approver listed there cannot approve.
 */
export async function checkRestoreApprovals(
  approversFile: string | undefined,
  searchPath: string | undefined,
  now: Date = new Date(),
): Promise<CheckOutcome> {
  if (approversFile === undefined) {
    return {
      status: 'warn',
      detail:
        'DBOPS_APPROVERS_FILE is not set: restores are approved by unsigned names: anyone who can reach the Temporal namespace can approve',
      hint: `set DBOPS_APPROVERS_FILE to an allowed-signers file, ${SIGNED_APPROVALS}`,
    };
  }
  let text: string;
  try {
    text = await readFile(approversFile, 'utf8');
  } catch (err) {
    return {
      status: 'fail',
      detail: `DBOPS_APPROVERS_FILE=${approversFile} cannot be read (${errorText(err)}): the worker refuses every signed decision`,
      hint: `put the allowed-signers file there (Kubernetes: the ConfigMap dbops-approvers, mounted read-only) or point DBOPS_APPROVERS_FILE at it; ${SIGNED_APPROVALS}`,
    };
  }
  const exe = await findOnPath('ssh-keygen', searchPath);
  if (!exe) {
    return {
      status: 'fail',
      detail: `ssh-keygen is not on PATH (${searchPath ?? 'unset'}): the worker cannot check signed decisions`,
      hint: "install OpenSSH's client (Debian: apt-get install openssh-client; the dbops image has it) or add its folder to PATH",
    };
  }
  const probe = await signAndVerifyProbe(exe, SIGNATURE_NAMESPACE);
  if (probe) {
    return {
      status: 'fail',
      detail: `${probe}: signed decisions cannot be made or checked here`,
      hint: /No user exists for uid/.test(probe)
        ? "run as a user listed in /etc/passwd (the image's uid 10001): ssh-keygen refuses a uid without an entry"
        : 'install OpenSSH 8.2 or newer (ssh-keygen -Y sign/verify; Debian: apt-get install openssh-client)',
    };
  }
  return judgeSigners(approversFile, text, exe, now);
}

async function judgeSigners(file: string, text: string, exe: string, now: Date): Promise<CheckOutcome> {
  const { lines, malformed } = parseAllowedSigners(text, SIGNATURE_NAMESPACE, now);
  const problems: LineProblem[] = [...malformed];
  // Lines for other namespaces (a file shared with git's signing) are neither signers nor mistakes.
  const otherNamespaces: LineProblem[] = [];
  const principals = new Set<string>();
  const keys = new Set<string>();
  for (const l of lines) {
    const fp = await fingerprint(exe, l.keyType, l.key);
    if ('problem' in fp) problems.push({ line: l.line, problem: fp.problem });
    else if (l.otherNamespace) otherNamespaces.push({ line: l.line, problem: l.problem! });
    else if (l.problem) problems.push({ line: l.line, problem: l.problem });
    else {
      principals.add(l.principals[0]!);
      keys.add(fp.fingerprint);
    }
  }
  problems.sort((a, b) => a.line - b.line);
  const ignored = otherNamespaces.length
    ? `; ${plural(otherNamespaces.length, 'line')} for other namespaces ignored`
    : '';
  if (keys.size === 0) {
    const why = [...problems, ...otherNamespaces].sort((a, b) => a.line - b.line);
    return {
      status: 'fail',
      detail: `${file} lists no valid signer${why.length ? ` (${listProblems(why)})` : ' (no key lines)'}: the worker refuses every signed decision`,
      hint: ADD_SIGNER,
    };
  }
  const names = [...principals].slice(0, 5).join(', ') + (principals.size > 5 ? ', …' : '');
  const usable = `${plural(principals.size, 'principal')} (${names}) with ${plural(keys.size, 'key')} can sign restore decisions${ignored}`;
  if (problems.length) {
    return {
      status: 'warn',
      detail: `${file}: ${usable}; ${plural(problems.length, 'line')} cannot: ${listProblems(problems)}`,
      hint: `fix or remove the lines named: the approvers listed only there cannot approve; ${SIGNED_APPROVALS}`,
    };
  }
  return { detail: `${file}: ${usable} (checked with ${exe})` };
}

/** The "manifest key" row: unset is fine (optional); set, it must be a readable Ed25519 private key. */
export async function checkManifestKey(file: string | undefined): Promise<CheckOutcome> {
  if (file === undefined) {
    return {
      status: 'skip',
      detail: 'DBOPS_MANIFEST_KEY is not set: backup manifests are not signed (optional)',
      hint: `to have workers sign manifests and refuse unsigned ones, give every worker the same Ed25519 key in DBOPS_MANIFEST_KEY (${GENERATE_MANIFEST_KEY})`,
    };
  }
  // The worker's own loader: the doctor accepts exactly the keys the worker does.
  let key: ManifestKey;
  try {
    key = loadManifestKey(file);
  } catch (err) {
    return {
      status: 'fail',
      detail: errorText(err),
      hint: `mount an unencrypted PEM Ed25519 private key there (Kubernetes: the Secret dbops-manifest-key) or fix DBOPS_MANIFEST_KEY; create one with ${GENERATE_MANIFEST_KEY}`,
    };
  }
  // The key id (what signed manifests name) lets an operator see that every worker holds the same key.
  return { detail: `${file}: Ed25519 private key, key id ${key.keyId} (the same on every worker)` };
}

export const restoreApprovalsCheck: Check = {
  name: 'restore approvals',
  required: true,
  run: ({ config }) => checkRestoreApprovals(config.restore.approversFile, process.env.PATH),
  hint: () => `check DBOPS_APPROVERS_FILE and that ssh-keygen runs here; ${SIGNED_APPROVALS}`,
};

export const manifestKeyCheck: Check = {
  name: 'manifest key',
  required: true,
  run: ({ config }) => checkManifestKey(config.manifestKeyFile),
  hint: () => `check DBOPS_MANIFEST_KEY (an Ed25519 private key, PEM: ${GENERATE_MANIFEST_KEY})`,
};
