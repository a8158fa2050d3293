import { describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/doctor/checks';
import { s3Overrides, testConfig, uniqueSuffix } from '../helpers/stack';

describe('dbops doctor says how each connection of the dev stack is protected', () => {
  it('PostgreSQL, Temporal, Milvus and the S3 store: plain on the loopback dev stack, S3 allowed by DBOPS_S3_ALLOW_HTTP', async () => {
    const config = testConfig({
      ...s3Overrides('connection-security'),
      DBOPS_TASK_QUEUE: `test-connsec-${uniqueSuffix()}`,
    });
    const byName = Object.fromEntries((await runDoctor(config)).map((r) => [r.name, r]));
    expect(byName.postgresql).toMatchObject({ status: 'ok' });
    expect(byName.postgresql!.detail).toContain(
      `${config.pg.host}:${config.pg.port}/${config.pg.database} (connection: plain): PostgreSQL 18`,
    );
    expect(byName.temporal).toMatchObject({ status: 'ok' });
    expect(byName.temporal!.detail).toMatch(/; connection: plain$/);
    expect(byName.milvus).toMatchObject({ status: 'ok' });
    expect(byName.milvus!.detail).toMatch(/: Milvus v?2\.3\.5\S*; connection: plain$/);
    expect(byName['backup storage']).toMatchObject({ status: 'ok' });
    expect(byName['backup storage']!.detail).toMatch(/; connection: plain \(DBOPS_S3_ALLOW_HTTP=true\)$/);
  }, 60_000);
});
