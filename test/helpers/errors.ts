import { failureTypeOf } from '../../common/failures';
import { ConfigError, loadConfig } from '../../src/config';

/** The error `p` rejects with, and its failure type; a test fails if `p` resolves. */
export async function errorOf(p: Promise<unknown>): Promise<Error & { type?: string }> {
  try {
    await p;
  } catch (err) {
    return Object.assign(err as Error, { type: failureTypeOf(err) });
  }
  throw new Error('expected a failure');
}

/** The problems loadConfig reports for `env` (it must refuse it with a ConfigError). */
export function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems as string[];
  }
  throw new Error('expected a ConfigError');
}
