/**
 * An OpenSSH allowed-signers file (ssh-keygen(1), ALLOWED SIGNERS) read the way the worker's
 * `ssh-keygen -Y find-principals` / `-Y verify` read it, for `dbops doctor`: which lines can sign a
 * restore decision now, and why each other line cannot. Whether a key itself is valid is left to
 * ssh-keygen (ssh-keygen.ts); this reads each line's structure and the options that decide whether
 * a valid key may sign in the dbops-restore namespace at this moment.
 */

export interface SignerLine {
  /** 1-based line number in the file, for messages an operator can act on. */
  readonly line: number;
  readonly principals: readonly string[];
  readonly keyType: string;
  /** The base64 key blob. */
  readonly key: string;
  /** Why this line cannot sign restore decisions even with a valid key; undefined when it can. */
  readonly problem: string | undefined;
  /** The line is restricted to other namespaces (e.g. git's): not for dbops, not a mistake. */
  readonly otherNamespace: boolean;
}

export interface LineProblem {
  readonly line: number;
  readonly problem: string;
}

/** A token of the key type field (ssh-ed25519, ecdsa-sha2-nistp256, sk-ssh-ed25519@openssh.com, …). */
const KEY_TYPE = /^(ssh-|ecdsa-|sk-)/;
const KNOWN_OPTIONS = new Set(['cert-authority', 'namespaces', 'valid-after', 'valid-before']);

/** Whitespace-separated fields; a double-quoted part keeps its spaces (`namespaces="a b"`). */
function fields(line: string): string[] {
  return line.match(/(?:"[^"]*"|[^\s"])+/g) ?? [];
}

/** OpenSSH pattern lists: comma-separated globs (`*`, `?`), a `!` pattern excludes. */
export function matchesPatternList(value: string, list: string): boolean {
  let matched = false;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const glob = negated ? raw.slice(1) : raw;
    const re = new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    if (re.test(value)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** ssh-keygen's valid-after/valid-before times: YYYYMMDD[HHMM[SS]], local time unless a final Z says UTC. */
export function parseSshTime(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(Z)?$/.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((v) => Number(v ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = m[7] ? new Date(Date.UTC(y, mo - 1, d, h, mi, s)) : new Date(y, mo - 1, d, h, mi, s);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

type Options = Map<string, string | true>;

/**
 * Options (`cert-authority,namespaces="x",valid-before="…"`), or why ssh-keygen rejects them (it
 * then skips the whole line).
 */
function parseOptions(text: string): Options | string {
  const options: Options = new Map();
  for (const part of text.match(/(?:"[^"]*"|[^,])+/g) ?? []) {
    const m = /^([A-Za-z-]+)(?:="([^"]*)")?$/.exec(part);
    if (!m) return `option ${JSON.stringify(part)} is not name or name="value"`;
    const name = m[1]!.toLowerCase();
    if (!KNOWN_OPTIONS.has(name)) return `unknown option ${JSON.stringify(m[1])}`;
    if (name.startsWith('valid-') && !parseSshTime(m[2] ?? '')) {
      return `${name}="${m[2] ?? ''}" is not YYYYMMDD[HHMM[SS]][Z]`;
    }
    options.set(name, m[2] ?? true);
  }
  return options;
}

/** Why the key is outside its validity window at `now` (ssh-keygen then skips the line), or undefined. */
function windowProblem(options: Options, now: Date): string | undefined {
  const before = options.get('valid-before');
  const after = options.get('valid-after');
  if (typeof before === 'string' && parseSshTime(before)!.getTime() <= now.getTime())
    return `the key expired (valid-before ${before})`;
  if (typeof after === 'string' && parseSshTime(after)!.getTime() > now.getTime())
    return `the key is not valid yet (valid-after ${after})`;
  return undefined;
}

/** Why the one key line ssh-keygen matches for a key cannot name an approver, or undefined. */
function principalProblem(principals: readonly string[]): string | undefined {
  // The worker takes the one principal ssh-keygen finds as the approver's identity.
  if (principals.length !== 1) {
    return `names ${principals.length} principals (${principals.join(',')}) for one key: the worker refuses a key listed for more than one person`;
  }
  if (/[*?!]/.test(principals[0]!)) {
    return `principal ${JSON.stringify(principals[0])} is a pattern: the worker would record the pattern, not a person, as the approver`;
  }
  return undefined;
}

function excludes(options: Options, namespace: string): boolean {
  const namespaces = options.get('namespaces');
  return namespaces !== undefined && (namespaces === true || !matchesPatternList(namespace, namespaces));
}

/**
 * The key lines of an allowed-signers file and the lines that are not key lines at all. A key
 * listed again under another principal is a problem on the later line: ssh-keygen's
 * find-principals answers with the first line it matches, whatever its namespaces.
 */
export function parseAllowedSigners(
  text: string,
  namespace: string,
  now: Date,
): { lines: SignerLine[]; malformed: LineProblem[] } {
  const lines: SignerLine[] = [];
  const malformed: LineProblem[] = [];
  const firstOfKey = new Map<string, { line: number; principals: string }>();
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    const content = raw.trim();
    if (content === '' || content.startsWith('#')) return;
    const f = fields(content);
    const hasOptions = f.length > 1 && !KEY_TYPE.test(f[1]!);
    const [keyType, key] = hasOptions ? [f[2], f[3]] : [f[1], f[2]];
    if (!keyType || !key || !KEY_TYPE.test(keyType)) {
      malformed.push({ line, problem: 'is not `principals [options] key-type base64-key`' });
      return;
    }
    const principals = f[0]!.replace(/"/g, '').split(',');
    const parsed = hasOptions ? parseOptions(f[1]!) : (new Map() as Options);
    const entry = { line, principals, keyType, key, otherNamespace: false };
    if (typeof parsed === 'string') {
      lines.push({ ...entry, problem: `${parsed} (ssh-keygen skips the line)` });
      return;
    }
    // A line ssh-keygen skips (outside its validity window) hides no later line.
    const skipped = windowProblem(parsed, now);
    const first = firstOfKey.get(`${keyType} ${key}`);
    if (!first && !skipped) firstOfKey.set(`${keyType} ${key}`, { line, principals: principals.join(',') });
    const shadowed =
      first && first.principals !== principals.join(',')
        ? `the same key as line ${first.line} (${first.principals}): ssh-keygen takes the first line's principal; list each key under one person`
        : undefined;
    const otherNamespace = excludes(parsed, namespace);
    const problem =
      skipped ??
      shadowed ??
      principalProblem(principals) ??
      (otherNamespace ? `restricted to namespaces="${String(parsed.get('namespaces'))}"` : undefined);
    lines.push({ ...entry, otherNamespace: otherNamespace && !skipped && !shadowed, problem });
  });
  return { lines, malformed };
}
