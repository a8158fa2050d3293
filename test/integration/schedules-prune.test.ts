/**
 * Schedules follow the config (`dbops schedules apply [--prune]`) on the real Temporal dev server,
 * in the run's own namespace. Only the backup and partitions areas are applied: the Milvus
 * schedules' IDs are the same for every test file of the run (one per collection), so applying
 * them here would rewrite another file's.
 */
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type Connection,
  type ScheduleDescription,
} from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupScheduleId, baseBackupScheduleId, partitionMaintenanceScheduleId } from '../../common/ids';
import { connectClient } from '../../src/client/connection';
import { applySchedules } from '../../src/schedules';
import { AREA_MEMO_KEY } from '../../src/schedules/ownership';
import { removeSchedule } from '../../src/schedules/stale';
import { scheduleStates } from '../../src/schedules/state';
import { dbops } from '../drills/kit/dbops-cli';
import { testConfig, testRun, uniqueSuffix } from '../helpers/stack';

const suffix = uniqueSuffix();
const TASK_QUEUE = `test-schedprune-${suffix}`;
const AREAS = ['backup', 'partitions'];
const [dbA, dbB] = [`t_sprune_a_${suffix}`, `t_sprune_b_${suffix}`];
const configOf = (databases: string, taskQueue = TASK_QUEUE) =>
  testConfig({ DBOPS_TASK_QUEUE: taskQueue, DBOPS_DATABASES: databases });
const twoDatabases = configOf(`${dbA},${dbB}`);
const oneDatabase = configOf(dbA);

// Never to be touched: a dbops-shaped schedule made by hand (no mark), and one dbops created for
// another deployment (another task queue) whose config does not ask for it.
const HAND_MADE = backupScheduleId(`t_sprune_hand_${suffix}`);
const dbOther = `t_sprune_other_${suffix}`;
const otherDeployment = configOf(dbOther, `test-schedprune-other-${suffix}`);

let client: Client;
let connection: Connection;

beforeAll(async () => {
  ({ client, connection } = await connectClient(oneDatabase));
});

afterAll(async () => {
  for await (const s of client.schedule.list()) {
    if (s.scheduleId.includes(suffix)) await client.schedule.getHandle(s.scheduleId).delete();
  }
  await connection?.close();
});

async function describeOrGone(id: string): Promise<ScheduleDescription | 'gone'> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return 'gone';
    throw err;
  }
}

/** The schedule list is eventually consistent: wait until it shows `ids` with their memo. */
async function waitListed(ids: readonly string[]): Promise<void> {
  let listed = new Set<string>();
  for (let i = 0; i < 120; i++) {
    listed = new Set<string>();
    for await (const s of client.schedule.list()) if (s.memo) listed.add(s.scheduleId);
    if (ids.every((id) => listed.has(id))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`schedules not listed after 30 s: ${ids.filter((id) => !listed.has(id)).join(', ')}`);
}

describe('schedules apply follows the config', () => {
  it('reports a dropped database’s schedules, prunes them only with prune and only in the areas asked for', async () => {
    const otherApplied = await applySchedules(client, otherDeployment, ['backup']);
    expect(otherApplied).toEqual([{ id: backupScheduleId(dbOther), area: 'backup', action: 'created' }]);
    const handMade = await client.schedule.create({
      scheduleId: HAND_MADE,
      spec: { calendars: [{ hour: 5, minute: 0 }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'backupWorkflow',
        taskQueue: TASK_QUEUE,
        workflowId: HAND_MADE,
        args: [],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      memo: { description: 'made by hand, not by dbops' },
      state: { paused: true, note: 'hand-made' },
    });
    const handMadeBefore = await handMade.describe();

    const created = await applySchedules(client, twoDatabases, AREAS);
    expect(created).toEqual([
      { id: backupScheduleId(dbA), area: 'backup', action: 'created' },
      { id: backupScheduleId(dbB), area: 'backup', action: 'created' },
      { id: partitionMaintenanceScheduleId(dbA), area: 'partitions', action: 'created' },
      { id: partitionMaintenanceScheduleId(dbB), area: 'partitions', action: 'created' },
    ]);
    const keptBefore = await client.schedule.getHandle(backupScheduleId(dbA)).describe();
    expect(keptBefore.memo).toMatchObject({
      [AREA_MEMO_KEY]: 'backup',
      description: `daily backup of ${dbA}`,
    });
    await waitListed([...created.map((r) => r.id), HAND_MADE, backupScheduleId(dbOther)]);

    // Without prune: a dry run for what the config dropped; the schedules are still there.
    expect(await applySchedules(client, oneDatabase, AREAS)).toEqual([
      { id: backupScheduleId(dbA), area: 'backup', action: 'updated' },
      { id: partitionMaintenanceScheduleId(dbA), area: 'partitions', action: 'updated' },
      { id: backupScheduleId(dbB), area: 'backup', action: 'stale' },
      { id: partitionMaintenanceScheduleId(dbB), area: 'partitions', action: 'stale' },
    ]);
    expect(await describeOrGone(backupScheduleId(dbB))).not.toBe('gone');
    expect(await describeOrGone(partitionMaintenanceScheduleId(dbB))).not.toBe('gone');
    const listed = await scheduleStates(client, oneDatabase);
    expect(listed.filter((s) => s.stale).map((s) => s.id)).toEqual([
      backupScheduleId(dbB),
      partitionMaintenanceScheduleId(dbB),
    ]);

    // Prune within one area leaves the other area's stale schedule alone.
    expect(await applySchedules(client, oneDatabase, ['partitions'], { prune: true })).toEqual([
      { id: partitionMaintenanceScheduleId(dbA), area: 'partitions', action: 'updated' },
      { id: partitionMaintenanceScheduleId(dbB), area: 'partitions', action: 'removed' },
    ]);
    expect(await describeOrGone(partitionMaintenanceScheduleId(dbB))).toBe('gone');
    expect(await describeOrGone(backupScheduleId(dbB))).not.toBe('gone');

    expect(await applySchedules(client, oneDatabase, AREAS, { prune: true })).toEqual([
      { id: backupScheduleId(dbA), area: 'backup', action: 'updated' },
      { id: partitionMaintenanceScheduleId(dbA), area: 'partitions', action: 'updated' },
      { id: backupScheduleId(dbB), area: 'backup', action: 'removed' },
    ]);
    expect(await describeOrGone(backupScheduleId(dbB))).toBe('gone');
    // The database still configured keeps its schedule: the same one (created once), still marked.
    const kept = await client.schedule.getHandle(backupScheduleId(dbA)).describe();
    expect(kept.info.createdAt).toEqual(keptBefore.info.createdAt);
    expect(kept.memo).toEqual(keptBefore.memo);
    // Nothing dbops did not create, nor another deployment's schedule, was touched.
    const handMadeAfter = await handMade.describe();
    expect(handMadeAfter.state).toEqual(handMadeBefore.state);
    expect(handMadeAfter.memo).toEqual({ description: 'made by hand, not by dbops' });
    expect(handMadeAfter.info.createdAt).toEqual(handMadeBefore.info.createdAt);
    expect(await describeOrGone(backupScheduleId(dbOther))).toMatchObject({
      action: { taskQueue: otherDeployment.temporal.taskQueue },
    });
  });

  it('a schedule at a dbops ID that dbops did not create is updated, reported unmarked and never pruned', async () => {
    const queue = `test-schedprune-adopt-${suffix}`;
    const [db, next] = [`t_sprune_adopt_${suffix}`, `t_sprune_next_${suffix}`];
    const id = backupScheduleId(db);
    await client.schedule.create({
      scheduleId: id,
      spec: { calendars: [{ hour: 6, minute: 0 }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'backupWorkflow',
        taskQueue: queue,
        workflowId: id,
        args: [],
      },
      memo: { description: `daily backup of ${db}` },
      state: { paused: true },
    });
    expect(await applySchedules(client, configOf(db, queue), ['backup'])).toEqual([
      { id, area: 'backup', action: 'updated', unmarked: true },
    ]);
    expect(await describeOrGone(id)).toMatchObject({
      action: { args: [expect.objectContaining({ database: db })] },
    });
    await waitListed([id]);
    expect(await applySchedules(client, configOf(next, queue), ['backup'], { prune: true })).toEqual([
      { id: backupScheduleId(next), area: 'backup', action: 'created' },
    ]);
    expect(await describeOrGone(id)).not.toBe('gone');
  });

  it('base backup schedules follow DBOPS_BASEBACKUP_SCHEDULE: on creates both, off reports them stale, --prune removes them', async () => {
    // Their IDs are one per namespace (one server per deployment): only this test creates them, on its own queue.
    const queue = `test-schedprune-bb-${suffix}`;
    const ids = [baseBackupScheduleId('full'), baseBackupScheduleId('incremental')];
    const on = testConfig({
      DBOPS_TASK_QUEUE: queue,
      DBOPS_DATABASES: dbA,
      DBOPS_BASEBACKUP_SCHEDULE: 'on',
      DBOPS_BASEBACKUP_TIME: '02:45',
      DBOPS_BASEBACKUP_FULL_DAY: 'sat',
    });
    const off = testConfig({ DBOPS_TASK_QUEUE: queue, DBOPS_DATABASES: dbA });
    try {
      expect(await applySchedules(client, on, ['basebackup'])).toEqual(
        ids.map((id) => ({ id, area: 'basebackup', action: 'created' })),
      );
      const full = await client.schedule.getHandle(ids[0]!).describe();
      expect(full.spec.calendars).toEqual([
        expect.objectContaining({ dayOfWeek: [{ start: 'SATURDAY', end: 'SATURDAY', step: 1 }] }),
      ]);
      expect(full.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }] });
      expect(full.action).toMatchObject({
        workflowType: 'baseBackupWorkflow',
        taskQueue: queue,
        args: [{ kind: 'full', trigger: 'scheduled' }],
      });
      expect(full.policies).toMatchObject({ overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: 86_400_000 });
      const incremental = await client.schedule.getHandle(ids[1]!).describe();
      expect(incremental.spec.calendars?.[0]?.dayOfWeek).toEqual(
        ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY'].map((d) => ({
          start: d,
          end: d,
          step: 1,
        })),
      );
      expect(incremental.memo).toMatchObject({ [AREA_MEMO_KEY]: 'basebackup' });
      expect(await applySchedules(client, on, ['basebackup'])).toEqual(
        ids.map((id) => ({ id, area: 'basebackup', action: 'updated' })),
      );
      await waitListed(ids);
      expect(await applySchedules(client, off, ['basebackup'])).toEqual(
        ids.map((id) => ({ id, area: 'basebackup', action: 'stale' })),
      );
      expect(await applySchedules(client, off, ['basebackup'], { prune: true })).toEqual(
        ids.map((id) => ({ id, area: 'basebackup', action: 'removed' })),
      );
      for (const id of ids) expect(await describeOrGone(id)).toBe('gone');
    } finally {
      for (const id of ids) await removeSchedule(client, id);
    }
  });

  it('an unknown area is refused, naming the areas', async () => {
    await expect(applySchedules(client, oneDatabase, ['backups'], { prune: true })).rejects.toThrow(
      'unknown schedule area "backups": use backup, partitions, milvus, basebackup (or no --area for all)',
    );
  });
});

describe('dbops schedules apply (CLI)', () => {
  const [dbC, dbD] = [`t_sprune_c_${suffix}`, `t_sprune_d_${suffix}`];
  const env = (databases: string) => ({
    DBOPS_TEMPORAL_NAMESPACE: testRun().namespace,
    DBOPS_BACKUP_DIR: testRun().backupDir,
    DBOPS_TASK_QUEUE: `test-schedprune-cli-${suffix}`,
    DBOPS_DATABASES: databases,
  });

  it('reports stale schedules with exit 0 and how to prune them; --prune removes them', async () => {
    const first = await dbops(env(`${dbC},${dbD}`), 'schedules', 'apply', '--area', 'backup', '--json');
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual([
      { id: backupScheduleId(dbC), area: 'backup', action: 'created' },
      { id: backupScheduleId(dbD), area: 'backup', action: 'created' },
    ]);
    await waitListed([backupScheduleId(dbC), backupScheduleId(dbD)]);

    const dryRun = await dbops(env(dbC), 'schedules', 'apply', '--area', 'backup');
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout).toMatch(new RegExp(`${backupScheduleId(dbC)}\\s*│\\s*backup\\s*│\\s*updated`));
    expect(dryRun.stdout).toMatch(
      new RegExp(`${backupScheduleId(dbD)}\\s*│\\s*backup\\s*│\\s*stale, kept \\(dry run\\)`),
    );
    expect(dryRun.stderr).toContain(
      `dbops: 1 schedule of this dbops no longer asked for by the configuration kept (dry run): ${backupScheduleId(dbD)}. ` +
        '"dbops schedules apply --prune --area backup" removes them',
    );
    expect(await describeOrGone(backupScheduleId(dbD))).not.toBe('gone');
    const list = await dbops(env(dbC), 'schedules', 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toContainEqual(
      expect.objectContaining({ id: backupScheduleId(dbD), area: 'backup', stale: true }),
    );

    const pruned = await dbops(env(dbC), 'schedules', 'apply', '--area', 'backup', '--prune', '--json');
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout)).toEqual([
      { id: backupScheduleId(dbC), area: 'backup', action: 'updated' },
      { id: backupScheduleId(dbD), area: 'backup', action: 'removed' },
    ]);
    expect(pruned.stderr).not.toContain('dbops:');
    expect(await describeOrGone(backupScheduleId(dbD))).toBe('gone');
    expect(await describeOrGone(backupScheduleId(dbC))).not.toBe('gone');
  });

  it('a misspelt --area fails with exit 2 and touches nothing', async () => {
    const r = await dbops(env(dbC), 'schedules', 'apply', '--area', 'backups', '--prune');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown schedule area "backups": use backup, partitions, milvus');
    expect(r.stdout).toBe('');
  });
});
