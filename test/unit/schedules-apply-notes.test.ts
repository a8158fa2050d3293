import { describe, expect, it } from 'vitest';
import { applyNotes } from '../../src/cli/commands/schedules';

describe('schedules apply notes (stderr)', () => {
  it('names the stale schedules kept by a dry run and the command that removes them, with the same areas', () => {
    const rows = [
      { id: 'backup-a', area: 'backup', action: 'updated' as const },
      { id: 'backup-b', area: 'backup', action: 'stale' as const },
      { id: 'partition-maintenance-b', area: 'partitions', action: 'stale' as const },
    ];
    expect(applyNotes(rows, ['backup', 'partitions'])).toEqual([
      '2 schedules of this dbops no longer asked for by the configuration kept (dry run): ' +
        'backup-b, partition-maintenance-b. "dbops schedules apply --prune --area backup partitions" ' +
        'removes them (runs already started go on, backups stay).',
    ]);
    expect(applyNotes(rows, undefined)[0]).toContain('"dbops schedules apply --prune" removes them');
  });

  it('says nothing after a prune or when all is applied', () => {
    expect(
      applyNotes(
        [
          { id: 'backup-a', area: 'backup', action: 'created' },
          { id: 'backup-b', area: 'backup', action: 'removed' },
        ],
        undefined,
      ),
    ).toEqual([]);
  });

  it('tells how to hand an unmarked schedule to dbops', () => {
    const [note] = applyNotes(
      [{ id: 'backup-x', area: 'backup', action: 'updated', unmarked: true }],
      undefined,
    );
    expect(note).toBe(
      'backup-x carries no dbops mark (memo dbopsArea; created by hand or by an older dbops): it was ' +
        'updated, but --prune will never remove it; to hand it to dbops, delete it ' +
        '("temporal schedule delete --schedule-id backup-x") and run "dbops schedules apply" again.',
    );
  });
});
