-- =============================================================================
-- V002: user behaviors (range-partitioned by month) and user profiles
-- Differences from the original spec: partitions are created ahead of time by
-- ensure_behavior_partitions() (a row trigger cannot create the partition its own row
-- needs), and a DEFAULT partition catches rows outside the prepared months so an insert
-- never fails; partition maintenance moves them out later.
-- Month boundaries are UTC midnights, whatever the session time zone.
-- =============================================================================

CREATE TABLE user_behaviors (
    id UUID DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    item_id UUID NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    action VARCHAR(50) NOT NULL CHECK (action IN ('view', 'click', 'like', 'dislike', 'buy', 'share', 'rating')),
    value DECIMAL(5, 2),  -- numeric actions such as ratings
    context JSONB DEFAULT '{}',
    session_id VARCHAR(100),
    device_type VARCHAR(50),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE TABLE user_behaviors_default PARTITION OF user_behaviors DEFAULT;

-- Indexes on the (still empty) parent are created on every partition, present and future.
CREATE INDEX idx_behaviors_user_id ON user_behaviors(user_id);
CREATE INDEX idx_behaviors_item_id ON user_behaviors(item_id);
CREATE INDEX idx_behaviors_action ON user_behaviors(action);
CREATE INDEX idx_behaviors_user_action ON user_behaviors(user_id, action, created_at DESC);

-- Creates the monthly partitions user_behaviors_YYYY_MM for from_month .. from_month +
-- months_ahead (inclusive) that do not exist yet, and returns the names it created.
-- Idempotent. Rows of a new month already sitting in the DEFAULT partition are moved
-- into the new partition (attaching it would fail otherwise).
CREATE OR REPLACE FUNCTION ensure_behavior_partitions(from_month DATE, months_ahead INT)
RETURNS SETOF TEXT
LANGUAGE plpgsql AS $$
DECLARE
    parent REGCLASS := 'user_behaviors'::regclass;
    parent_schema TEXT;
    month_start DATE;
    part_name TEXT;
    lower_bound TIMESTAMPTZ;
    upper_bound TIMESTAMPTZ;
    stray_rows BOOLEAN;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 600 THEN
        RAISE EXCEPTION 'ensure_behavior_partitions: months_ahead must be 0..600, got %', months_ahead;
    END IF;
    SELECT n.nspname INTO parent_schema
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    FOR i IN 0..months_ahead LOOP
        month_start := (date_trunc('month', from_month) + make_interval(months => i))::date;
        part_name := 'user_behaviors_' || to_char(month_start, 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('%I.%I', parent_schema, part_name)) IS NOT NULL;
        lower_bound := month_start::timestamp AT TIME ZONE 'UTC';
        upper_bound := (month_start + INTERVAL '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.user_behaviors_default WHERE created_at >= %L AND created_at < %L)',
                       parent_schema, lower_bound, upper_bound) INTO stray_rows;
        IF stray_rows THEN
            EXECUTE format('CREATE TABLE %I.%I (LIKE %I.user_behaviors INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           parent_schema, part_name, parent_schema);
            EXECUTE format('WITH moved AS (DELETE FROM %I.user_behaviors_default WHERE created_at >= %L AND created_at < %L RETURNING *) '
                           'INSERT INTO %I.%I SELECT * FROM moved',
                           parent_schema, lower_bound, upper_bound, parent_schema, part_name);
            EXECUTE format('ALTER TABLE %I.user_behaviors ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                           parent_schema, parent_schema, part_name, lower_bound, upper_bound);
        ELSE
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.user_behaviors FOR VALUES FROM (%L) TO (%L)',
                           parent_schema, part_name, parent_schema, lower_bound, upper_bound);
        END IF;
        RETURN NEXT part_name;
    END LOOP;
END;
$$;

-- 12 months back to 3 months ahead of the current (UTC) month.
SELECT count(*) AS partitions_created
  FROM ensure_behavior_partitions(((date_trunc('month', now() AT TIME ZONE 'UTC')) - INTERVAL '12 months')::date, 15);

-- -----------------------------------------------------------------------------
-- user_profiles
-- -----------------------------------------------------------------------------
CREATE TABLE user_profiles (
    user_id UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    total_actions BIGINT DEFAULT 0,
    preferred_types JSONB DEFAULT '{}',
    preferred_categories JSONB DEFAULT '{}',
    active_hours JSONB DEFAULT '{}',
    last_active TIMESTAMP WITH TIME ZONE,
    profile_vector BYTEA,  -- serialized user vector
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TRIGGER user_profiles_updated_at
    BEFORE UPDATE ON user_profiles
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at();
