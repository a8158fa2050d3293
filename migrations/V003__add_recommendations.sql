-- =============================================================================
-- V003: recommendations a generative recommender writes and serves
--   recommendation_lists   one generated list per (user, request): model, version, strategy,
--                          expiry. "Latest list for a user" is one index probe on
--                          (user_id, created_at DESC); expired lists are found by expires_at
--                          and deleted in batches (their items and impressions cascade).
--   recommendation_items   the ranked entries of a list: rank, score, explanation.
--   recommendation_impressions  which entries were shown to the user, and when.
--   user_behaviors.recommendation_list_id  links clicks, likes, buys ... back to the list
--                          that was served (no FK: behaviors outlive expired lists).
-- =============================================================================

CREATE TABLE recommendation_lists (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model_name VARCHAR(100) NOT NULL,
    model_version VARCHAR(50) NOT NULL,
    strategy VARCHAR(30) NOT NULL
        CHECK (strategy IN ('generative', 'collaborative', 'content_based', 'popular', 'hybrid')),
    request_context JSONB NOT NULL DEFAULT '{}',
    item_count SMALLINT NOT NULL DEFAULT 0 CHECK (item_count >= 0),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW() + INTERVAL '1 day',
    CHECK (expires_at > created_at)
);

CREATE INDEX idx_rec_lists_user_created ON recommendation_lists(user_id, created_at DESC);
CREATE INDEX idx_rec_lists_expires_at ON recommendation_lists(expires_at);

CREATE TABLE recommendation_items (
    list_id UUID NOT NULL REFERENCES recommendation_lists(id) ON DELETE CASCADE,
    rank SMALLINT NOT NULL CHECK (rank >= 1),
    item_id UUID NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    score REAL NOT NULL,
    explanation TEXT,
    PRIMARY KEY (list_id, rank)
);

CREATE TABLE recommendation_impressions (
    list_id UUID NOT NULL,
    rank SMALLINT NOT NULL,
    shown_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    position_context JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (list_id, rank, shown_at),
    FOREIGN KEY (list_id, rank) REFERENCES recommendation_items(list_id, rank) ON DELETE CASCADE
);

-- Adding a nullable column without a default is a catalog-only change, even on a large table.
ALTER TABLE user_behaviors ADD COLUMN recommendation_list_id UUID;
