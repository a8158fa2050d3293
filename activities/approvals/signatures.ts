import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SIGNATURE_NAMESPACE, type SignedStatement, type Signer } from '../../common/approvals';
import { FailureType, failure } from '../../common/failures';
import { runSshTool } from './ssh-tool';

/** Far above any real statement or armored Ed25519/RSA-4096 signature; more is refused unread. */
const MAX_BYTES = 16 * 1024;
const ARMOR = /^-----BEGIN SSH SIGNATURE-----\n[A-Za-z0-9+/=\n]+-----END SSH SIGNATURE-----\n?$/;

/** ssh-keygen with PATH only: the worker's verdict comes from the allowed-signers file alone. */
const sshKeygen = (args: string[], input?: string) => runSshTool('ssh-keygen', args, { input });

/**
 * Proves a signed statement with OpenSSH (`ssh-keygen -Y find-principals`, then `-Y verify` in
 * the dbops-restore namespace) against the allowed-signers file, and returns its signer: the one
 * principal that file lists for the key. A key listed under several principals is refused: the
 * identity four-eyes compares must be unambiguous.
 */
export async function verifySignedStatement(approversFile: string, signed: SignedStatement): Promise<Signer> {
  const refuse = (why: string) => failure(FailureType.Refused, `signature refused: ${why}`);
  if (typeof signed?.statement !== 'string' || typeof signed.signature !== 'string')
    throw refuse('the request carries no statement and signature');
  if (signed.statement.length > MAX_BYTES || signed.signature.length > MAX_BYTES)
    throw refuse(`statement or signature longer than ${MAX_BYTES} bytes`);
  if (!ARMOR.test(signed.signature.replace(/\r\n/g, '\n')))
    throw refuse(
      'not an armored SSH signature (-----BEGIN SSH SIGNATURE-----); sign with ssh-keygen -Y sign',
    );
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dbops-sig-'));
  try {
    const sig = path.join(dir, 'statement.sig');
    await writeFile(sig, signed.signature, { mode: 0o600 });
    const found = await sshKeygen(['-Y', 'find-principals', '-s', sig, '-f', approversFile]);
    if (found.exitCode !== 0) throw unmatched(approversFile, found.stderr);
    const principals = found.stdout
      .split('\n')
      .flatMap((l) => l.split(','))
      .map((p) => p.trim())
      .filter(Boolean);
    if (principals.length !== 1) {
      throw refuse(
        `the key is listed for ${principals.length} principals (${principals.join(', ')}) in ${approversFile}: list each key under exactly one person`,
      );
    }
    const principal = principals[0]!;
    const verified = await sshKeygen(
      ['-Y', 'verify', '-f', approversFile, '-I', principal, '-n', SIGNATURE_NAMESPACE, '-s', sig],
      signed.statement,
    );
    if (verified.exitCode !== 0) {
      throw refuse(
        `the signature does not match the statement for ${principal} in namespace ${SIGNATURE_NAMESPACE} (${oneLine(verified.stderr || verified.stdout)}): the statement was altered, or signed for another purpose`,
      );
    }
    const fingerprint = /key (SHA256:[A-Za-z0-9+/=]+)/.exec(verified.stdout)?.[1] ?? 'unknown';
    return { principal, fingerprint };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function oneLine(text: string): string {
  return text.trim().split('\n').slice(-2).join(' / ') || 'no output';
}

function unmatched(approversFile: string, stderr: string) {
  if (/No such file|could not open|Permission denied/i.test(stderr)) {
    return failure(
      FailureType.Misconfigured,
      `DBOPS_APPROVERS_FILE=${approversFile} cannot be read (${oneLine(stderr)}): mount the allowed-signers file there, or unset the variable`,
    );
  }
  return failure(
    FailureType.Refused,
    `signature refused: the signing key is not in the allowed-signers file ${approversFile} (${oneLine(stderr)}); ask an administrator to add your public key ("<you> <key type> <key>") to it`,
  );
}
