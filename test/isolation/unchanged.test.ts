import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

import { takeSnapshot, type Snapshot } from './snapshot';

/**
 * Runs last (test/run.sh): everything the user owns on the dev stack is exactly as it was before
 * the suite. The "before" snapshot is taken by test/run.sh ahead of the first test.
 */
describe('the test suite leaves the dev stack as it found it', () => {
  it('default namespace, schedules, namespaces, databases, collections, dev rows, backups and bucket are unchanged', async () => {
    const file = process.env.DBOPS_TEST_ISOLATION_SNAPSHOT;
    if (!file)
      throw new Error(
        'no "before" snapshot (DBOPS_TEST_ISOLATION_SNAPSHOT): run through npm test, whose test/run.sh takes it',
      );
    const before = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
    const after = await takeSnapshot();
    // Field by field, so a failure names what changed.
    for (const key of Object.keys(before) as (keyof Snapshot)[]) {
      expect(after[key], `${key} changed during the test run`).toEqual(before[key]);
    }
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  });
});
