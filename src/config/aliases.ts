/**
 * Reading the spec's script names (VARIABLE_ALIASES in ./variables.ts) for the dbops variables they
 * stand for: the one place loadConfig (./index.ts) learns of them.
 */
import {
  SECRET_VARIABLES,
  UNREAD_SPEC_VARIABLES,
  VARIABLE_ALIASES,
  type AliasName,
  type VariableName,
} from './variables';

export interface AliasReading {
  /** The values read from aliases, by the dbops variable they fill (only where it was unset). */
  readonly values: Partial<Record<VariableName, string>>;
  /** Which alias filled each of them: `dbops config` shows it as the source. */
  readonly from: Partial<Record<VariableName, AliasName>>;
  /** Aliases set to a value other than their dbops variable's: the config error. */
  readonly conflicts: readonly string[];
  /** One line for each alias in use and each spec variable dbops does not read. */
  readonly warnings: readonly string[];
}

const set = (value: string | undefined) => (value === '' ? undefined : value);

/**
 * The aliases in `env`. `preferred` holds the dbops variables already given (the environment and
 * DATABASE_URL's parts); `preferredFrom` names where each came from, for the conflict message.
 */
export function readAliases(
  env: NodeJS.ProcessEnv,
  preferred: Partial<Record<VariableName, string>>,
  preferredFrom: (name: VariableName) => string,
): AliasReading {
  const values: Partial<Record<VariableName, string>> = {};
  const from: Partial<Record<VariableName, AliasName>> = {};
  const conflicts: string[] = [];
  const warnings: string[] = [];
  for (const [alias, { variable, script }] of Object.entries(VARIABLE_ALIASES) as [
    AliasName,
    (typeof VARIABLE_ALIASES)[AliasName],
  ][]) {
    const value = set(env[alias]);
    if (value === undefined) continue;
    const given = preferred[variable];
    if (given !== undefined && given !== value) {
      const givenBy = preferredFrom(variable);
      const secret = SECRET_VARIABLES.has(variable) || givenBy !== variable;
      conflicts.push(
        `${givenBy} and ${alias} (the ${script} name) are both set, to different values` +
          (secret ? '' : ` (${JSON.stringify(given)} and ${JSON.stringify(value)})`) +
          `: unset ${alias} and keep ${givenBy}, or make them equal`,
      );
      continue;
    }
    warnings.push(`${alias} is the ${script} name: set ${variable} instead (read from ${alias} for now)`);
    if (given === undefined) {
      values[variable] = value;
      from[variable] = alias;
    }
  }
  for (const [name, advice] of Object.entries(UNREAD_SPEC_VARIABLES)) {
    if (set(env[name]) !== undefined) warnings.push(`${name} ${advice}`);
  }
  return { values, from, conflicts, warnings };
}

/** A writer that passes each distinct line on once: the same config loaded twice warns once. */
export function onceEach(write: (line: string) => void): (line: string) => void {
  const seen = new Set<string>();
  return (line) => {
    if (seen.has(line)) return;
    seen.add(line);
    write(line);
  };
}

/** This process's warnings, on stderr (a CLI's stdout may be JSON a script parses). */
export const warnOncePerProcess = onceEach((line) => process.stderr.write(`dbops: warning: ${line}\n`));
