-- =============================================================================
-- V004: indexes for the real query paths, safe on a large live database.
-- Runs outside a transaction (V004__add_indexes.sql.conf: executeInTransaction=false) so that
-- CREATE INDEX CONCURRENTLY builds without blocking writes. IF NOT EXISTS makes a rerun after a
-- failure continue where it stopped (drop an index left INVALID by a failed build first).
-- =============================================================================

-- Active catalogue browsing: "active movies in category X, newest first".
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_items_active_type_category
    ON items (type, category, created_at DESC) WHERE status = 'active';

-- Deleting an item cascades to recommendation_items: needs an index on the referencing column.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_rec_items_item_id ON recommendation_items (item_id);

-- Expired-list cleanup of impressions by list is covered by their primary key.

-- Partitioned table: CONCURRENTLY is not supported on a partitioned parent, so
--   1. create the parent index ON ONLY the parent (catalog only, instant, marked invalid),
--   2. build each partition's index (one partition at a time, see below),
--   3. ATTACH each one; the parent index becomes valid when every partition has one.
-- Partitions created later by ensure_behavior_partitions() get the index automatically.
CREATE INDEX IF NOT EXISTS idx_behaviors_item_created ON ONLY user_behaviors (item_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_behaviors_rec_list ON ONLY user_behaviors (recommendation_list_id)
    WHERE recommendation_list_id IS NOT NULL;

-- Partition names depend on when V002 ran, so step 2 cannot be static SQL, and CONCURRENTLY
-- cannot run inside a DO block. Each partition's build locks only that partition (SHARE: reads
-- continue, writes to that month wait) and is committed at once (COMMIT inside DO works because
-- this script runs outside a transaction), so no lock outlives its own partition's build; past
-- months take no writes, and the current month is the only one that waits.
DO $$
DECLARE
    part RECORD;
    spec RECORD;
    child_index TEXT;
BEGIN
    FOR spec IN
        SELECT * FROM (VALUES
            ('idx_behaviors_item_created', '(item_id, created_at DESC)', ''),
            ('idx_behaviors_rec_list', '(recommendation_list_id)', 'WHERE recommendation_list_id IS NOT NULL')
        ) AS s(parent_index, columns, predicate)
    LOOP
        FOR part IN
            SELECT c.relname, n.nspname
              FROM pg_inherits i
              JOIN pg_class c ON c.oid = i.inhrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE i.inhparent = 'user_behaviors'::regclass
             ORDER BY c.relname
        LOOP
            child_index := left(part.relname || '_' || replace(spec.parent_index, 'idx_behaviors_', ''), 63);
            -- already attached (rerun or partition created after step 1)?
            CONTINUE WHEN EXISTS (
                SELECT 1 FROM pg_inherits ii
                  JOIN pg_class ci ON ci.oid = ii.inhrelid
                  JOIN pg_index x ON x.indexrelid = ci.oid
                 WHERE ii.inhparent = format('%I.%I', part.nspname, spec.parent_index)::regclass
                   AND x.indrelid = format('%I.%I', part.nspname, part.relname)::regclass);
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I %s %s',
                           child_index, part.nspname, part.relname, spec.columns, spec.predicate);
            EXECUTE format('ALTER INDEX %I.%I ATTACH PARTITION %I.%I',
                           part.nspname, spec.parent_index, part.nspname, child_index);
            COMMIT;
        END LOOP;
    END LOOP;
END;
$$;
