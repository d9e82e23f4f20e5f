-- Version 2: sentence vectors of comment texts (VectorStore, postgres/vectors.py), so a text is
-- encoded once for every process and restart. Derived data: backups and copies leave it out.

CREATE TABLE text_vectors (
    model text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    vector bytea NOT NULL,
    PRIMARY KEY (model, digest)
);
