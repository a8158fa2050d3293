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
