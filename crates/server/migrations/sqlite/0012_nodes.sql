-- The nodes serving this store, as each last said it was alive: every node
-- writes its row at start-up and at every key maintenance (signing.reload_every),
-- and rows silent for a day are deleted. What the console's overview calls
-- "nodes seen".
CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);
