/**
 * The one rule for PostgreSQL database (and role) names that dbops accepts, and the one error for
 * bad input. Workflow-safe: used by the config, the CLI, the workflows and the activities.
 */

/** Letters, digits, `_ $ -`, not starting with a digit, at most 63 characters (ASCII: 63 bytes). */
export const DATABASE_NAME_PATTERN = '[A-Za-z_][A-Za-z0-9_$-]{0,62}';
export const DATABASE_NAME = new RegExp(`^${DATABASE_NAME_PATTERN}$`);
/** What DATABASE_NAME allows, in words: part of every message that refuses a name. */
export const DATABASE_NAME_RULE = 'letters, digits, _ $ - (at most 63 characters, not starting with a digit)';

/**
 * Bad input from a user or a caller, found before anything was changed. Activities and workflows
 * turn it into a non-retryable InvalidInput failure (common/failures.ts), the CLI into exit code 2.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

export function isValidDatabaseName(name: string): boolean {
  return typeof name === 'string' && DATABASE_NAME.test(name);
}

/** Throws InputError naming `what`, the value and the rule. */
export function assertDatabaseName(name: string, what = 'database name'): void {
  if (!isValidDatabaseName(name)) {
    throw new InputError(`${what} ${JSON.stringify(name)} is not valid: use ${DATABASE_NAME_RULE}`);
  }
}

/**
 * Databases the PostgreSQL server itself relies on: `postgres` (the maintenance database every tool
 * and dbops' own cut-over connect to) and the templates every CREATE DATABASE copies. Never a
 * restore's target: renaming one away breaks the server's other users.
 */
export const SYSTEM_DATABASES: readonly string[] = ['postgres', 'template0', 'template1'];

/** Throws InputError when `name` is one of SYSTEM_DATABASES (compared as PostgreSQL does: exactly). */
export function assertNotSystemDatabase(name: string, what = 'restore target'): void {
  if (SYSTEM_DATABASES.includes(name)) {
    throw new InputError(
      `${what} ${JSON.stringify(name)} is a system database (${SYSTEM_DATABASES.join(', ')}) and is never replaced by a restore: restore into another database with --target <name>`,
    );
  }
}

/** Control characters except newline and tab (C0, DEL, C1): a terminal runs them (colours, cursor moves, a cleared screen). */
function hasControlCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a && c !== 0x09) || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/**
 * Free text a person types that others read later (an approval's comment): at most `maxLength`
 * characters and no control characters, so `dbops restore status` and Slack show what was typed.
 * Newlines and tabs are fine; quotes and any script are fine (always quoted or escaped on output).
 */
export function assertPlainText(text: string, what: string, maxLength = 2000): void {
  if (typeof text !== 'string' || text.length > maxLength) {
    throw new InputError(`${what} is too long: at most ${maxLength} characters`);
  }
  if (hasControlCharacters(text)) {
    throw new InputError(
      `${what} ${JSON.stringify(text)} contains control characters (escape sequences): type plain text`,
    );
  }
}

/** Who requests or decides a restore (`--as`): one line of plain text, at most 100 characters. */
export function assertPersonName(name: string, what = '--as'): void {
  if (typeof name !== 'string' || name.trim() === '') {
    throw new InputError(`${what}: a name is required (who requests or decides), e.g. --as alice`);
  }
  assertPlainText(name, what, 100);
  if (/[\n\t]/.test(name)) throw new InputError(`${what} ${JSON.stringify(name)}: a name is one line`);
}
