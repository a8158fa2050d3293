/**
 * item_stats and user_profiles computed from the loaded behaviors (so they agree exactly).
 * profile_vector is the user's embedding in pgvector's binary form (1 KiB for dim 256).
 */
export const ITEM_STATS_SQL = `INSERT INTO item_stats (item_id, view_count, click_count, like_count, share_count, avg_rating, rating_count)
   SELECT i.id,
          coalesce(b.views, 0), coalesce(b.clicks, 0), coalesce(b.likes, 0), coalesce(b.shares, 0),
          coalesce(round(b.avg_rating, 2), 0), coalesce(b.ratings, 0)
     FROM items i
     LEFT JOIN (
       SELECT item_id,
              count(*) FILTER (WHERE action = 'view') AS views,
              count(*) FILTER (WHERE action = 'click') AS clicks,
              count(*) FILTER (WHERE action = 'like') AS likes,
              count(*) FILTER (WHERE action = 'share') AS shares,
              avg(value) FILTER (WHERE action = 'rating') AS avg_rating,
              count(*) FILTER (WHERE action = 'rating') AS ratings
         FROM user_behaviors GROUP BY item_id
     ) b ON b.item_id = i.id`;

export const USER_PROFILES_SQL: readonly string[] = [
  `CREATE TEMP TABLE seed_user_item_agg ON COMMIT DROP AS
   SELECT b.user_id, i.type, i.category, extract(hour FROM b.created_at AT TIME ZONE 'UTC')::int AS hour,
          count(*) AS n, max(b.created_at) AS last_at
     FROM user_behaviors b JOIN items i ON i.id = b.item_id
    GROUP BY 1, 2, 3, 4`,
  `INSERT INTO user_profiles (user_id, total_actions, preferred_types, preferred_categories, active_hours, last_active, profile_vector)
   SELECT u.id,
          coalesce(t.total, 0),
          coalesce(t.types, '{}'),
          coalesce(c.categories, '{}'),
          coalesce(h.hours, '{}'),
          t.last_at,
          vector_send(e.embedding)
     FROM users u
     LEFT JOIN user_embeddings e ON e.user_id = u.id
     LEFT JOIN (
       SELECT user_id, sum(n) AS total, max(last_at) AS last_at, jsonb_object_agg(type, n) AS types
         FROM (SELECT user_id, type, sum(n) AS n, max(last_at) AS last_at FROM seed_user_item_agg GROUP BY 1, 2) x
        GROUP BY user_id
     ) t ON t.user_id = u.id
     LEFT JOIN (
       SELECT user_id, jsonb_object_agg(category, n) AS categories
         FROM (SELECT user_id, category, sum(n) AS n,
                      row_number() OVER (PARTITION BY user_id ORDER BY sum(n) DESC, category) AS r
                 FROM seed_user_item_agg GROUP BY 1, 2) x
        WHERE r <= 5 GROUP BY user_id
     ) c ON c.user_id = u.id
     LEFT JOIN (
       SELECT user_id, jsonb_object_agg(hour, n) AS hours
         FROM (SELECT user_id, hour, sum(n) AS n FROM seed_user_item_agg GROUP BY 1, 2) x
        GROUP BY user_id
     ) h ON h.user_id = u.id`,
];
