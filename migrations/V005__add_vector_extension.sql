-- =============================================================================
-- V005: pgvector: the PostgreSQL side of the embeddings Milvus also serves.
-- 256-dimensional, unit-normalized embeddings, one row per item / user, with the model version
-- that produced them (a re-embedding run is visible, and Milvus sync can compare versions).
-- HNSW with cosine distance: no training step (unlike IVFFlat), good recall on a growing table.
-- =============================================================================

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE item_embeddings (
    item_id UUID PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    embedding vector(256) NOT NULL,
    model_version TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_item_embeddings_hnsw ON item_embeddings
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

CREATE TABLE user_embeddings (
    user_id UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    embedding vector(256) NOT NULL,
    model_version TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE TRIGGER item_embeddings_updated_at
    BEFORE UPDATE ON item_embeddings
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at();

CREATE TRIGGER user_embeddings_updated_at
    BEFORE UPDATE ON user_embeddings
    FOR EACH ROW
    EXECUTE FUNCTION update_updated_at();
