// LangChain.js's Milvus vector store (npm @langchain/community, unmodified) against a real
// `vlake serve`: what a RAG application does through it: add documents with metadata (new
// collection: VarChar text and metadata fields, Float numbers, an HNSW index under L2), search
// by similarity with and without a metadata filter, delete by filter, reopen the collection, and
// the autoId=false mode, which upserts by a VarChar primary key.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { USERS, startServer, stopServer } from "../vlake_server.mjs";

let Milvus, Embeddings, missing;
try {
  ({ Milvus } = await import("@langchain/community/vectorstores/milvus"));
  ({ Embeddings } = await import("@langchain/core/embeddings"));
} catch (err) {
  missing = `LangChain not installed (cd tests/integration/langchain && npm install): ${err.message}`;
}
if (missing && process.env.CI === "true") throw new Error(`CI=true and ${missing}`);

const DIM = 32;

// Deterministic embeddings: each word adds 1 at a hashed position, then unit length. A text's
// own embedding is its nearest neighbour; texts sharing words are near.
function embed(text) {
  const v = new Array(DIM).fill(0);
  for (const word of text.toLowerCase().split(/\W+/).filter(Boolean)) {
    let h = 2166136261;
    for (const c of word) h = Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0;
    v[h % DIM] += 1;
  }
  const n = Math.hypot(...v) || 1;
  return v.map((x) => x / n);
}

const texts = [
  "vlake stores objects on local disks and on Ceph RADOS",
  "the direct data path moves bytes over RDMA into GPU memory",
  "Milvus clients talk to the vector database over gRPC",
  "HNSW graphs answer nearest neighbour queries quickly",
  "IVF indexes partition vectors into clusters by k-means",
  "S3 clients sign requests with SigV4",
  "checkpoints of training runs are large objects",
  "embeddings turn text into vectors",
];

describe("LangChain Milvus vector store against vlake", { skip: missing || false }, () => {
  let root, server, embeddings, config;

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), "vlake-langchain-"));
    server = await startServer(root);
    class WordEmbeddings extends Embeddings {
      constructor() { super({}); }
      async embedDocuments(docs) { return docs.map(embed); }
      async embedQuery(q) { return embed(q); }
    }
    embeddings = new WordEmbeddings();
    config = { url: server.vectorAddress, username: USERS[0].access_key, password: USERS[0].secret_key };
  });

  after(async () => {
    if (server) await stopServer(server.proc);
    if (root && !process.env.VLAKE_KEEP_TEST_DIR) rmSync(root, { recursive: true, force: true });
  });

  test("add documents, search by similarity and by metadata, delete, reopen", async () => {
    const collectionName = `lc_${process.pid}`;
    const metadatas = texts.map((_, i) => ({ source: i < 4 ? "a.md" : "b.md", page: i }));
    const store = await Milvus.fromTexts(texts, metadatas, embeddings, { ...config, collectionName });

    const hits = await store.similaritySearch(texts[2], 3);
    assert.equal(hits.length, 3);
    assert.equal(hits[0].pageContent, texts[2]);
    assert.equal(hits[0].metadata.source, "a.md");
    assert.equal(hits[0].metadata.page, 2);
    const scored = await store.similaritySearchWithScore(texts[5], 2);
    assert.equal(scored[0][0].pageContent, texts[5]);
    assert.ok(scored[0][1] < 1e-4, `own text at distance ${scored[0][1]}`);

    const filtered = await store.similaritySearch(texts[2], 8, 'source == "b.md" and page >= 5');
    assert.deepEqual(filtered.map((d) => d.metadata.page).sort(), [5, 6, 7]);

    await store.delete({ filter: 'source == "a.md"' });
    const after = await store.similaritySearch(texts[1], 8);
    assert.equal(after.length, 4);
    assert.ok(after.every((d) => d.metadata.source === "b.md"));

    const reopened = await Milvus.fromExistingCollection(embeddings, { ...config, collectionName });
    await reopened.addDocuments([{ pageContent: "object lock keeps regulated data immutable",
                                   metadata: { source: "c.md", page: 9 } }]);
    const found = await reopened.similaritySearch("regulated data immutable object lock", 1);
    assert.equal(found[0].metadata.source, "c.md");
  });

  test("autoId=false upserts by the VarChar primary key", async () => {
    const collectionName = `lc_ids_${process.pid}`;
    const docs = texts.slice(0, 3).map((t, i) => ({ pageContent: t, metadata: { langchain_primaryid: `doc-${i}`, rev: 1 } }));
    const store = await Milvus.fromDocuments(docs, embeddings, { ...config, collectionName, autoId: false });
    await store.addDocuments([{ pageContent: texts[1], metadata: { langchain_primaryid: "doc-1", rev: 2 } }]);
    const hits = await store.similaritySearch(texts[1], 3);
    assert.equal(hits.length, 3, "the upsert replaced doc-1 instead of adding a row");
    const doc1 = hits.filter((d) => d.metadata.langchain_primaryid === "doc-1");
    assert.equal(doc1.length, 1);
    assert.equal(doc1[0].metadata.rev, 2);
  });
});
