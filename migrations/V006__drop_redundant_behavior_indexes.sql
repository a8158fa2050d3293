-- =============================================================================
-- V006: drop the two user_behaviors indexes that another index already covers.
-- idx_behaviors_user_id (user_id) is the left prefix of idx_behaviors_user_action
-- (user_id, action, created_at DESC), and idx_behaviors_item_id (item_id) is the left prefix of
-- idx_behaviors_item_created (item_id, created_at DESC, V004). Every lookup, join and foreign-key
-- check (ON DELETE CASCADE from users and items) they served, the composite index serves. Yet each
-- insert into the busiest table paid for both, and so did every index build after a restore.
-- Dropping a partitioned index drops its partitions' indexes with it. DROP INDEX CONCURRENTLY does
-- not support partitioned indexes: this takes a brief ACCESS EXCLUSIVE lock on user_behaviors, and
-- the migration session's lock_timeout stops it from queueing behind long queries (rerun later).
-- =============================================================================

DROP INDEX IF EXISTS idx_behaviors_user_id;
DROP INDEX IF EXISTS idx_behaviors_item_id;
