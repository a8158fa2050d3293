import { ConsistencyLevelEnum, LoadState, type MilvusClient } from '@zilliz/milvus2-sdk-node';
import { ensureOk } from './client';
import { describeVectorIndex, vectorFieldOf, type LiveIndex } from './indexes';

export interface SegmentSummary {
  readonly count: number;
  readonly rows: number;
  readonly ids: readonly string[];
}

export interface CollectionStats {
  readonly name: string;
  readonly exists: boolean;
  /** Row count from the collection statistics (persisted rows, may include deletes not yet compacted). */
  readonly rowCount: number;
  /** count(*) with Strong consistency when loaded: what searches see. */
  readonly liveEntities: number | null;
  readonly persistentSegments: SegmentSummary;
  readonly loadedSegments: SegmentSummary;
  readonly index: LiveIndex | null;
  readonly loadState: string;
}

function summarize(
  infos: readonly { segmentID: number | string; num_rows: number | string }[],
): SegmentSummary {
  return {
    count: infos.length,
    rows: infos.reduce((sum, s) => sum + Number(s.num_rows), 0),
    ids: infos.map((s) => String(s.segmentID)).sort(),
  };
}

const EMPTY: SegmentSummary = { count: 0, rows: 0, ids: [] };

export async function collectionStats(client: MilvusClient, name: string): Promise<CollectionStats> {
  const has = await client.hasCollection({ collection_name: name });
  ensureOk(has, `hasCollection ${name}`);
  if (!has.value) {
    return {
      name,
      exists: false,
      rowCount: 0,
      liveEntities: null,
      persistentSegments: EMPTY,
      loadedSegments: EMPTY,
      index: null,
      loadState: 'NotExist',
    };
  }
  const described = ensureOk(
    await client.describeCollection({ collection_name: name }),
    `describeCollection ${name}`,
  );
  const statistics = ensureOk(
    await client.getCollectionStatistics({ collection_name: name }),
    `getCollectionStatistics ${name}`,
  );
  const persistent = ensureOk(
    await client.getPersistentSegmentInfo({ collectionName: name }),
    `getPersistentSegmentInfo ${name}`,
  );
  // Dropped/compacted-away segments can linger in the listing with state Dropped: count live ones.
  const livePersistent = persistent.infos.filter((s) => !/dropped|notexist/i.test(String(s.state)));
  const load = ensureOk(await client.getLoadState({ collection_name: name }), `getLoadState ${name}`);
  const loaded = load.state === LoadState.LoadStateLoaded;
  let loadedSegments = EMPTY;
  let liveEntities: number | null = null;
  if (loaded) {
    const query = ensureOk(
      await client.getQuerySegmentInfo({ collectionName: name }),
      `getQuerySegmentInfo ${name}`,
    );
    loadedSegments = summarize(query.infos);
    const count = await client.query({
      collection_name: name,
      expr: '',
      output_fields: ['count(*)'],
      consistency_level: ConsistencyLevelEnum.Strong,
    });
    ensureOk(count, `count(*) on ${name}`);
    liveEntities = Number(count.data[0]?.['count(*)'] ?? 0);
  }
  const vectorField = vectorFieldOf(described.schema.fields);
  const index = vectorField ? ((await describeVectorIndex(client, name, vectorField)) ?? null) : null;
  return {
    name,
    exists: true,
    rowCount: Number(statistics.data.row_count ?? 0),
    liveEntities,
    persistentSegments: summarize(livePersistent),
    loadedSegments,
    index,
    loadState: String(load.state).replace(/^LoadState/, ''),
  };
}
