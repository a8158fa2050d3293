/**
 * Temporal namespaces of the dev stack: `default` for the user's work (the quickstart, the Web UI
 * link) and one namespace per test run, so that tests never add a workflow or schedule to what the
 * user looks at. Both get dbops' search attributes from the one list in common/.
 */
import { Connection, isGrpcServiceError } from '@temporalio/client';
import { msNumberToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';

import { DBOPS_SEARCH_ATTRIBUTES } from '../../common/search-attributes';
import { sleep } from './procs';

/** Test runs' namespaces start with this; the run's UTC start time follows (see testNamespaceName). */
export const TEST_NAMESPACE_PREFIX = 'dbops-test-';

const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;

/** `dbops-test-20261204T111500-k3x9`: sortable by start, unique per run. */
export function testNamespaceName(now: Date, random: string): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `${TEST_NAMESPACE_PREFIX}${stamp}-${random}`;
}

/** The start time encoded in a test namespace's name; undefined for other names. */
export function testNamespaceStarted(name: string): Date | undefined {
  const m = new RegExp(`^${TEST_NAMESPACE_PREFIX}(\\d{8})T(\\d{6})-`).exec(name);
  if (!m?.[1] || !m[2]) return undefined;
  const [d, t] = [m[1], m[2]];
  const iso = `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}Z`;
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

async function withConnection<T>(address: string, fn: (c: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address, connectTimeout: '10s' });
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}

// gRPC status codes (grpc-js is not a direct dependency): NOT_FOUND 5, ALREADY_EXISTS 6.
const grpcCode = (err: unknown): number | undefined =>
  isGrpcServiceError(err) ? Number(err.code) : undefined;
const notFound = (err: unknown) => grpcCode(err) === 5;
const alreadyExists = (err: unknown) => grpcCode(err) === 6;

/**
 * Creates the namespace when missing (retention `retentionDays`) and registers every dbops search
 * attribute in it. Idempotent; safe when two callers race (ALREADY_EXISTS counts as done).
 */
export async function ensureNamespace(
  address: string,
  namespace: string,
  retentionDays = 1,
): Promise<{ created: boolean; addedAttributes: string[] }> {
  return withConnection(address, async (c) => {
    let created = false;
    try {
      await c.workflowService.describeNamespace({ namespace });
    } catch (err) {
      if (!notFound(err)) throw err;
      try {
        await c.workflowService.registerNamespace({
          namespace,
          description: namespace.startsWith(TEST_NAMESPACE_PREFIX)
            ? 'dbops test run (removed at its end)'
            : '',
          workflowExecutionRetentionPeriod: msNumberToTs(retentionDays * 86_400_000),
        });
        created = true;
      } catch (e) {
        if (!alreadyExists(e)) throw e;
      }
    }
    // A new namespace reaches the server's namespace cache a moment after it is registered; until
    // then the operator service answers NOT_FOUND.
    let listed;
    for (let attempt = 0; ; attempt++) {
      try {
        listed = await c.operatorService.listSearchAttributes({ namespace });
        break;
      } catch (err) {
        if (!notFound(err) || attempt >= 120) throw err;
        await sleep(250);
      }
    }
    const have = new Set(Object.keys(listed.customAttributes ?? {}));
    const missing = DBOPS_SEARCH_ATTRIBUTES.map((k) => k.name).filter((n) => !have.has(n));
    if (missing.length > 0) {
      try {
        await c.operatorService.addSearchAttributes({
          namespace,
          searchAttributes: Object.fromEntries(missing.map((n) => [n, KEYWORD])),
        });
      } catch (e) {
        if (!alreadyExists(e)) throw e;
      }
    }
    return { created, addedAttributes: missing };
  });
}

/** Deletes a namespace with everything in it (workflows, schedules); false when it did not exist. */
export async function deleteNamespace(address: string, namespace: string): Promise<boolean> {
  if (namespace === 'default' || namespace === 'temporal-system') {
    throw new Error(`refusing to delete the ${namespace} namespace`);
  }
  return withConnection(address, async (c) => {
    try {
      await c.operatorService.deleteNamespace({ namespace });
      return true;
    } catch (err) {
      if (notFound(err)) return false;
      throw err;
    }
  });
}

/** Test namespaces that are still registered (a killed run leaves its namespace behind). */
export async function listTestNamespaces(address: string): Promise<string[]> {
  return withConnection(address, async (c) => {
    const names: string[] = [];
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await c.workflowService.listNamespaces({ pageSize: 100, nextPageToken });
      for (const ns of page.namespaces ?? []) {
        const name = ns.namespaceInfo?.name ?? '';
        const registered =
          ns.namespaceInfo?.state === temporal.api.enums.v1.NamespaceState.NAMESPACE_STATE_REGISTERED;
        if (registered && name.startsWith(TEST_NAMESPACE_PREFIX)) names.push(name);
      }
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
    return names;
  });
}
