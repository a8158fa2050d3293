-- Fallback for bench/backup.ts when `dbops db seed` is not available: the seed's shape at scale 1
-- (100k users, 50k items, 5M behaviors in 12 monthly partitions, 100k profiles with 1 KiB bytea), ~2 GB.
CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE NOT NULL, name text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE items (id bigint PRIMARY KEY, title text NOT NULL, category text, price numeric(10,2), tags text[], created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE user_behaviors (id bigint NOT NULL, user_id bigint NOT NULL, item_id bigint NOT NULL, behavior_type text NOT NULL,
  score real, context jsonb, created_at timestamptz NOT NULL, PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at);
DO $$ BEGIN
  FOR m IN 0..11 LOOP
    EXECUTE format('CREATE TABLE user_behaviors_%s PARTITION OF user_behaviors FOR VALUES FROM (%L) TO (%L)',
      to_char(date '2026-01-01' + make_interval(months => m), 'YYYY_MM'),
      date '2026-01-01' + make_interval(months => m), date '2026-01-01' + make_interval(months => m + 1));
  END LOOP;
END $$;
CREATE TABLE user_behaviors_default PARTITION OF user_behaviors DEFAULT;
CREATE TABLE user_profiles (user_id bigint PRIMARY KEY REFERENCES users(id), features jsonb, embedding bytea, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO users SELECT g, 'user' || g || '@example.com', 'User ' || g, timestamptz '2025-01-01' + g * interval '1 minute' FROM generate_series(1, 100000) g;
INSERT INTO items SELECT g, 'Item ' || g || ' ' || md5(g::text), 'cat' || (g % 50), (g % 1000) / 10.0, ARRAY['t' || (g % 17), 't' || (g % 31)], now() FROM generate_series(1, 50000) g;
INSERT INTO user_behaviors SELECT g, 1 + (g * 7919) % 100000, 1 + (g * 104729) % 50000, (ARRAY['view','click','like','purchase'])[1 + g % 4],
  (g % 100) / 100.0, jsonb_build_object('page', 'p' || (g % 20), 'pos', g % 50, 'session', md5(g::text)),
  timestamptz '2026-01-01' + ((g % 360) * interval '1 day') + ((g % 86400) * interval '1 second') FROM generate_series(1::bigint, 5000000) g;
INSERT INTO user_profiles SELECT g, jsonb_build_object('age', 18 + g % 60, 'segment', 's' || (g % 12)),
  (SELECT string_agg(decode(md5((g * 64 + i)::text), 'hex'), ''::bytea) FROM generate_series(1, 64) i), now() FROM generate_series(1, 100000) g;
CREATE INDEX ON user_behaviors (user_id, created_at);
CREATE INDEX ON user_behaviors (item_id);
ANALYZE;
