/**
 * bench/restore.ts's source: a multi-table, application-shaped database made
 * server-side with generate_series (a handful of statements whatever the
 * size), on top of the fixture's alembic schema and seed_sample.py's rows.
 *
 * `rows` is the number of documents; the other tables scale with it:
 *
 *   fixture   dataset (2,000), reranker_model (200,000), dataset_embedding
 *             (rows/2 real[256] arrays, ~1 KiB each: seed_sample.py)
 *   app_user  rows/10 narrow rows with a jsonb settings column; UNIQUE email
 *   document  rows wide text rows (~1 KiB body of Zipf-like words, title,
 *             jsonb metadata, text[] tags, a tsvector); B-tree on
 *             dataset_id and (author_id, created_at); GIN on the tsvector,
 *             the jsonb (jsonb_path_ops) and the tags; FKs to dataset and app_user
 *   event     10 x rows narrow numeric rows (smallint, float8, numeric,
 *             timestamptz); B-tree on document_id, at and (user_id, kind);
 *             FKs to document and app_user
 *   attachment rows/4 rows with a 2 KiB incompressible bytea payload (as PDFs
 *             and images are) and its sha256 (UNIQUE); FKs to document and
 *             reranker_model
 *
 * Data goes in before indexes and foreign keys (two sessions at once), as a
 * loader would; then ANALYZE. 480,000 documents make a 2.6 GiB database and
 * a 1.01 GiB pg_dump -F c (default compression), in about 4 minutes on 2 cores.
 */
import type { Client, ClientConfig } from "pg";
import { withDb } from "../test/integration/helpers/db";
import { alembic, EXPECTED_HEAD, expectSuccess, seedSample } from "../test/integration/helpers/fixture";

export const FIXTURE_ROWS = { datasets: 2000, models: 200_000 };

export interface SourceShape {
    documents: number;
    users: number;
    events: number;
    attachments: number;
    embeddings: number;
}

export function sourceShape(rows: number): SourceShape {
    return {
        documents: rows,
        users: Math.max(1, Math.floor(rows / 10)),
        events: rows * 10,
        attachments: Math.floor(rows / 4),
        embeddings: Math.floor(rows / 2),
    };
}

const TABLES = `
CREATE TABLE app_user (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    display_name text NOT NULL,
    created_at timestamptz NOT NULL,
    settings jsonb NOT NULL
);
CREATE TABLE document (
    id bigint PRIMARY KEY,
    dataset_id integer NOT NULL,
    author_id bigint NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    metadata jsonb NOT NULL,
    tags text[] NOT NULL,
    search tsvector NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz
);
CREATE TABLE event (
    id bigint PRIMARY KEY,
    document_id bigint NOT NULL,
    user_id bigint,
    kind smallint NOT NULL,
    score double precision NOT NULL,
    amount numeric(12, 2),
    at timestamptz NOT NULL
);
CREATE TABLE attachment (
    id bigint PRIMARY KEY,
    document_id bigint NOT NULL,
    reranker_model_id integer,
    filename text NOT NULL,
    content_type text NOT NULL,
    sha256 bytea NOT NULL,
    payload bytea NOT NULL
);
`;

/** A word drawn log-uniformly (short words common, long ones rare, as in text), letters only. */
const WORD = "translate(to_hex(floor(exp(random() * 12))::int), '0123456789', 'ghijklmnop')";
const words = (count: string) => `array_to_string(ARRAY(SELECT ${WORD} FROM generate_series(1, ${count}) WHERE g IS NOT NULL), ' ')`;

function fillUsers(n: number): string {
    return `INSERT INTO app_user
SELECT g, format('user%s@example.org', g), initcap(${words("2")}), timestamptz '2023-01-01' + g * interval '5 minutes',
       jsonb_build_object('theme', (ARRAY['light', 'dark', 'system'])[1 + g % 3], 'locale', (ARRAY['en', 'de', 'fr', 'ja', 'pt'])[1 + g % 5],
                          'notifications', jsonb_build_object('email', g % 2 = 0, 'digest', (ARRAY['daily', 'weekly', 'never'])[1 + g % 3]))
FROM generate_series(1, ${n}) g`;
}

function fillDocuments(low: number, high: number, users: number, datasets: number): string {
    return `INSERT INTO document (id, dataset_id, author_id, title, body, metadata, tags, search, created_at, updated_at)
SELECT id, dataset_id, author_id, title, body, metadata, tags, to_tsvector('simple', title || ' ' || left(body, 400)), created_at, updated_at
FROM (
    SELECT g AS id, 1 + g % ${datasets} AS dataset_id, 1 + (g * 7919) % ${users} AS author_id,
           initcap(${words("4 + g % 6")}) AS title,
           ${words("150 + g % 60")} AS body,
           jsonb_build_object('source', (ARRAY['crawl', 'upload', 'api', 'import'])[1 + g % 4], 'pages', g % 300,
                              'quality', round(random()::numeric, 3), 'lang', (ARRAY['en', 'de', 'fr', 'ja'])[1 + g % 4],
                              'owner', jsonb_build_object('team', 'team-' || g % 97, 'region', (ARRAY['eu', 'us', 'ap'])[1 + g % 3]),
                              'flags', jsonb_build_array(g % 2 = 0, g % 3 = 0)) AS metadata,
           ARRAY['tag-' || g % 50, 'tag-' || g % 331, 'topic-' || g % 17] AS tags,
           timestamptz '2023-01-01' + g * interval '37 seconds' AS created_at,
           CASE WHEN g % 3 = 0 THEN timestamptz '2024-06-01' + g * interval '11 seconds' END AS updated_at
    FROM generate_series(${low}::bigint, ${high}::bigint) g
) d`;
}

function fillEvents(low: number, high: number, documents: number, users: number): string {
    return `INSERT INTO event
SELECT g, 1 + (g * 104729) % ${documents}, CASE WHEN g % 7 = 0 THEN NULL ELSE 1 + g % ${users} END, (g % 12)::smallint,
       random(), round((random() * 1000)::numeric, 2), timestamptz '2023-01-01' + g * interval '3 seconds'
FROM generate_series(${low}::bigint, ${high}::bigint) g`;
}

function fillAttachments(low: number, high: number, documents: number, models: number): string {
    return `INSERT INTO attachment
SELECT g, 1 + (g * 31) % ${documents}, CASE WHEN g % 3 = 0 THEN NULL ELSE 1 + g % ${models} END,
       format('file-%s.%s', g, ext), 'application/' || ext, sha256(payload), payload
FROM (SELECT g, (ARRAY['pdf', 'png', 'zip'])[1 + g % 3] AS ext, gen_random_bytes(1024) || gen_random_bytes(1024) AS payload
      FROM generate_series(${low}::bigint, ${high}::bigint) g) a`;
}

const INDEXES = [
    "CREATE UNIQUE INDEX app_user_email_key ON app_user (email)",
    "CREATE INDEX document_dataset_id_idx ON document (dataset_id)",
    "CREATE INDEX document_author_created_idx ON document (author_id, created_at)",
    "CREATE INDEX document_search_idx ON document USING gin (search)",
    "CREATE INDEX document_metadata_idx ON document USING gin (metadata jsonb_path_ops)",
    "CREATE INDEX document_tags_idx ON document USING gin (tags)",
    "CREATE INDEX event_document_id_idx ON event (document_id)",
    "CREATE INDEX event_at_idx ON event (at)",
    "CREATE INDEX event_user_kind_idx ON event (user_id, kind)",
    "CREATE UNIQUE INDEX attachment_sha256_key ON attachment (sha256)",
    "CREATE INDEX attachment_document_id_idx ON attachment (document_id)",
    "ALTER TABLE document ADD FOREIGN KEY (dataset_id) REFERENCES dataset (id) ON DELETE CASCADE",
    "ALTER TABLE document ADD FOREIGN KEY (author_id) REFERENCES app_user (id)",
    "ALTER TABLE event ADD FOREIGN KEY (document_id) REFERENCES document (id) ON DELETE CASCADE",
    "ALTER TABLE event ADD FOREIGN KEY (user_id) REFERENCES app_user (id)",
    "ALTER TABLE attachment ADD FOREIGN KEY (document_id) REFERENCES document (id) ON DELETE CASCADE",
    "ALTER TABLE attachment ADD FOREIGN KEY (reranker_model_id) REFERENCES reranker_model (id) ON DELETE SET NULL",
];


/** Statements over [1, total] in chunks, so progress shows and no statement runs for minutes. */
async function chunked(client: Client, what: string, total: number, chunk: number, sql: (low: number, high: number) => string, log: (line: string) => void): Promise<void> {
    const t0 = performance.now();
    for (let low = 1; low <= total; low += chunk) {
        const high = Math.min(total, low + chunk - 1);
        await client.query(sql(low, high));
        if (high === total || ((high / chunk) | 0) % 5 === 0) log(`source: ${what} ${high}/${total} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
}

/**
 * Fills an empty database (the application role's `clientConfig`,
 * `sqlalchemyUrl` for the fixture's Python) with {@link sourceShape}(rows).
 */
export async function buildRestoreSource(config: ClientConfig, sqlalchemyUrl: string, rows: number, log: (line: string) => void): Promise<SourceShape> {
    const shape = sourceShape(rows);
    expectSuccess(await alembic(sqlalchemyUrl, "upgrade", EXPECTED_HEAD), "alembic upgrade");
    await withDb(config, async (client) => {
        await client.query(TABLES);
        await client.query("CREATE EXTENSION IF NOT EXISTS pgcrypto"); // gen_random_bytes; dropped before the dump
    });
    const seedArgs = ["--datasets", String(FIXTURE_ROWS.datasets), "--reranker-models", String(FIXTURE_ROWS.models), "--embedding-rows", String(shape.embeddings)];
    // Two streams at once (2 cores): the fixture's seeder then the attachments; users, documents, events.
    await Promise.all([
        (async () => {
            log(`source: seed_sample.py ${seedArgs.join(" ")}`);
            expectSuccess(await seedSample(sqlalchemyUrl, seedArgs), "seed");
            await withDb(config, (client) => chunked(client, "attachment", shape.attachments, 25_000, (lo, hi) => fillAttachments(lo, hi, shape.documents, FIXTURE_ROWS.models), log));
        })(),
        withDb(config, async (client) => {
            await client.query(fillUsers(shape.users));
            await chunked(client, "document", shape.documents, 20_000, (lo, hi) => fillDocuments(lo, hi, shape.users, FIXTURE_ROWS.datasets), log);
            await chunked(client, "event", shape.events, 500_000, (lo, hi) => fillEvents(lo, hi, shape.documents, shape.users), log);
        }),
    ]);
    await withDb(config, async (client) => {
        await client.query("DROP EXTENSION pgcrypto");
        const t0 = performance.now();
        for (const statement of INDEXES) await client.query(statement);
        log(`source: ${INDEXES.length} indexes and foreign keys in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        await client.query("ANALYZE");
    });
    return shape;
}
