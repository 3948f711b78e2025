// The Milvus Node SDK against a real `vlake serve`, beyond the basic workflow of
// milvus_sdk_test.mjs: the quick setup with dynamic fields, VarChar primary keys, every scalar
// type, JSON fields and filters, upsert, partitions, every index type and DropIndex, and the
// REST v2 endpoints for them. What is asserted is Milvus's documented behaviour.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { USERS, startServer, stopServer } from "../vlake_server.mjs";

import { missing, sdk } from "./sdk.mjs";

const { MilvusClient, DataType, ErrorCode } = sdk || {};

const DIM = 8;
const OK = () => ErrorCode.SUCCESS;

// Seeded clustered vectors: rows near 8 centers.
function vectors(n, seed) {
  let x = seed >>> 0;
  const rand = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: DIM }, (_, d) => (d === i % 8 ? 10 : 0) + rand()));
}
const l2 = (a, b) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
const statusOf = (r) => r.status ?? r;
const okOf = (r, what) => assert.equal(statusOf(r).error_code, OK(), `${what}: ${statusOf(r).reason}`);
// The SDK returns some error statuses and throws others (its own checks, or the reason).
const outcome = (promise) =>
  promise.then((r) => ({ ok: statusOf(r).error_code === OK(), code: statusOf(r).code,
                         reason: statusOf(r).reason ?? "" }),
               // 2.5.x throws Errors, 3.0.x the status itself.
               (e) => ({ ok: false, code: e?.code, reason: String(e?.message ?? e?.reason ?? e) }));

describe("Milvus Node SDK: schemas, partitions, indexes", { skip: missing || false }, () => {
  let root, server, alice;

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), "vlake-milvus-schema-"));
    server = await startServer(root);
    alice = new MilvusClient({ address: server.vectorAddress, username: USERS[0].access_key,
                               password: USERS[0].secret_key, timeout: 20000 });
    await alice.connectPromise;
  });

  after(async () => {
    await alice?.closeConnection();
    if (server) await stopServer(server.proc);
    if (root && !process.env.VLAKE_KEEP_TEST_DIR) rmSync(root, { recursive: true, force: true });
  });

  const count = async (name, extra = {}) => {
    const r = await alice.query({ collection_name: name, output_fields: ["count(*)"], filter: "", ...extra });
    okOf(r, "count");
    return Number(r.data[0]["count(*)"]);
  };

  async function waitIndex(name) {
    let desc;
    for (let i = 0; i < 300; i++) {
      desc = await alice.describeIndex({ collection_name: name });
      const state = desc.index_descriptions?.[0]?.state;
      if (state === "Finished" || state === "Failed") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return desc;
  }

  test("quick setup: dynamic fields are stored, returned and filtered", async () => {
    const name = `quick_${process.pid}`;
    okOf(await alice.createCollection({ collection_name: name, dimension: DIM }), "create");
    const d = await alice.describeCollection({ collection_name: name });
    okOf(d, "describe");
    assert.equal(d.schema.enable_dynamic_field, true);
    assert.deepEqual(d.schema.fields.map((f) => f.name), ["id", "vector"]);
    assert.equal((await alice.getLoadState({ collection_name: name })).state, "LoadStateLoaded");

    const vecs = vectors(300, 5);
    const rows = vecs.map((v, i) => ({
      id: i, vector: v, color: ["red", "green", "blue"][i % 3], n: i, tags: { shard: i % 4 },
      ...(i % 10 === 0 ? { rare: "yes" } : {}),
    }));
    const ins = await alice.insert({ collection_name: name, data: rows });
    okOf(ins, "insert");
    assert.equal(Number(ins.insert_cnt), rows.length);

    // A dynamic key by its bare name, and through $meta.
    const red = await alice.query({ collection_name: name, filter: 'color == "red" and n < 30',
                                    output_fields: ["color", "n"] });
    okOf(red, "query");
    assert.deepEqual(red.data.map((r) => Number(r.id)).sort((a, b) => a - b),
                     [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
    // Query rows carry the dynamic keys in `$meta`, reduced to the keys asked for.
    for (const r of red.data) {
      assert.equal(r.$meta.color, "red");
      assert.equal(r.$meta.rare, undefined, "a key that was not asked for is not returned");
    }
    const meta = await alice.query({ collection_name: name, filter: '$meta["rare"] == "yes"',
                                     output_fields: ["*"] });
    okOf(meta, "query $meta");
    assert.equal(meta.data.length, 30);
    assert.deepEqual(meta.data[0].$meta.tags, { shard: Number(meta.data[0].id) % 4 });
    assert.equal(meta.data[0].$meta.rare, "yes");
    const nested = await count(name, { filter: 'tags["shard"] == 3' });
    assert.equal(nested, 75);

    // Search with a dynamic filter; COSINE is the quick setup's metric.
    const res = await alice.search({ collection_name: name, data: [vecs[7]], limit: 5,
                                     filter: "n >= 100", output_fields: ["color", "n"] });
    okOf(res, "search");
    assert.equal(res.results.length, 5);
    for (const h of res.results) assert.ok(Number(h.n) >= 100 && typeof h.color === "string");
    for (let i = 1; i < res.results.length; i++) assert.ok(res.results[i].score <= res.results[i - 1].score);

    // Bad dynamic data writes nothing: the SDK packs unknown keys into $meta, which must hold
    // objects.
    assert.equal(await count(name), rows.length);
    okOf(await alice.dropCollection({ collection_name: name }), "drop");
  });

  test("VarChar primary keys and every scalar type round-trip; bad values write nothing", async () => {
    const name = `typed_${process.pid}`;
    okOf(await alice.createCollection({
      collection_name: name,
      fields: [
        { name: "doc", data_type: DataType.VarChar, is_primary_key: true, max_length: 16 },
        { name: "vec", data_type: DataType.FloatVector, dim: DIM },
        { name: "tiny", data_type: DataType.Int8 },
        { name: "small", data_type: DataType.Int16 },
        { name: "mid", data_type: DataType.Int32 },
        { name: "big", data_type: DataType.Int64 },
        { name: "ratio", data_type: DataType.Float },
        { name: "exact", data_type: DataType.Double },
        { name: "ok", data_type: DataType.Bool },
        { name: "title", data_type: DataType.VarChar, max_length: 32 },
        { name: "info", data_type: DataType.JSON },
      ],
    }), "create");
    const d = await alice.describeCollection({ collection_name: name });
    const byName = Object.fromEntries(d.schema.fields.map((f) => [f.name, f]));
    assert.equal(byName.doc.is_primary_key, true);
    assert.equal(byName.doc.autoID, false);
    assert.equal(byName.tiny.data_type, "Int8");
    assert.equal(byName.ratio.data_type, "Float");
    assert.equal(byName.info.data_type, "JSON");
    assert.equal(d.schema.fields.some((f) => f.name.startsWith("__vlake")), false);

    const vecs = vectors(120, 9);
    const rows = vecs.map((v, i) => ({
      doc: `d${i}`, vec: v, tiny: (i % 200) - 100, small: i * 100 - 3000, mid: i * 100000,
      big: `${9007199254740993n + BigInt(i)}`, ratio: i / 4, exact: i / 3, ok: i % 2 === 0,
      title: `title ${i}`, info: { k: i, tag: i % 2 ? "odd" : "even", list: [i, i + 1] },
    }));
    const ins = await alice.insert({ collection_name: name, data: rows });
    okOf(ins, "insert");
    assert.deepEqual(ins.IDs.str_id.data.slice(0, 3), ["d0", "d1", "d2"]);

    const got = await alice.query({ collection_name: name, filter: 'doc in ["d5", "d7"]', output_fields: ["*"] });
    okOf(got, "query");
    assert.equal(got.data.length, 2);
    const r5 = got.data.find((r) => r.doc === "d5");
    assert.equal(Number(r5.tiny), -95);
    assert.equal(Number(r5.small), -2500);
    assert.equal(Number(r5.mid), 500000);
    assert.equal(String(r5.big), "9007199254740998");
    assert.equal(r5.ratio, 1.25);
    assert.ok(Math.abs(r5.exact - 5 / 3) < 1e-12);
    assert.equal(r5.ok, false);
    assert.equal(r5.title, "title 5");
    assert.deepEqual(r5.info, { k: 5, tag: "odd", list: [5, 6] });
    assert.equal(r5.vec.length, DIM);

    // Filters over each type, JSON paths and LIKE.
    assert.equal(await count(name, { filter: "tiny < 0 and mid >= 1000000" }), 90);
    assert.equal(await count(name, { filter: "ratio == 2.5" }), 1);
    assert.equal(await count(name, { filter: 'info["tag"] == "even" and info["k"] > 100' }), 9);
    assert.equal(await count(name, { filter: 'info["list"][1] == 4' }), 1);
    assert.equal(await count(name, { filter: 'title like "title 1%"' }), 31);
    assert.equal(await count(name, { filter: 'doc like "d1_"' }), 10);

    // Search returns the VarChar key.
    const res = await alice.search({ collection_name: name, data: [vecs[42]], limit: 3, output_fields: ["title"] });
    okOf(res, "search");
    assert.equal(res.results[0].doc, "d42");  // hits carry the key by its name
    assert.equal(res.results[0].title, "title 42");

    // Out of range, too long, wrong type: an error, and nothing is written.
    const before = await count(name);
    const bad = [
      { ...rows[0], doc: "x1", tiny: 128 },
      { ...rows[0], doc: "x2", small: 40000 },
      { ...rows[0], doc: "this-key-is-longer-than-16" },
      { ...rows[0], doc: "x3", title: "t".repeat(33) },
    ];
    for (const row of bad) {
      const r = await outcome(alice.insert({ collection_name: name, data: [rows[1], row] }));
      assert.equal(r.ok, false, JSON.stringify(row).slice(0, 80));
    }
    assert.equal(await count(name), before);
    okOf(await alice.dropCollection({ collection_name: name }), "drop");
  });

  test("upsert replaces rows by primary key, atomically with the insert", async () => {
    const name = `upsert_${process.pid}`;
    okOf(await alice.createCollection({
      collection_name: name,
      fields: [
        { name: "key", data_type: DataType.VarChar, is_primary_key: true, max_length: 32 },
        { name: "vec", data_type: DataType.FloatVector, dim: DIM },
        { name: "version", data_type: DataType.Int64 },
      ],
    }), "create");
    const vecs = vectors(50, 3);
    okOf(await alice.insert({ collection_name: name,
                              data: vecs.map((v, i) => ({ key: `k${i}`, vec: v, version: 1 })) }), "insert");
    okOf(await alice.flushSync({ collection_names: [name] }), "flush");  // sealed rows too
    const up = await alice.upsert({ collection_name: name,
                                    data: [{ key: "k3", vec: vecs[3], version: 2 },
                                           { key: "new", vec: vecs[4], version: 2 }] });
    okOf(up, "upsert");
    assert.equal(Number(up.upsert_cnt), 2);
    assert.deepEqual(up.IDs.str_id.data, ["k3", "new"]);
    assert.equal(await count(name), 51);
    const k3 = await alice.query({ collection_name: name, filter: 'key == "k3"', output_fields: ["version"] });
    assert.deepEqual(k3.data.map((r) => Number(r.version)), [2]);
    // Again, after a flush and a reload: the replaced row never comes back.
    okOf(await alice.flushSync({ collection_names: [name] }), "flush");
    okOf(await alice.releaseCollection({ collection_name: name }), "release");
    okOf(await alice.loadCollectionSync({ collection_name: name }), "load");
    const again = await alice.query({ collection_name: name, filter: 'key in ["k3", "new"]', output_fields: ["version"] });
    assert.deepEqual(again.data.map((r) => Number(r.version)), [2, 2]);
    const res = await alice.search({ collection_name: name, data: [vecs[3]], limit: 2, output_fields: ["version"] });
    assert.equal(res.results[0].key, "k3");  // hits carry the key by its name
    assert.equal(Number(res.results[0].version), 2);
    // Delete by the VarChar key.
    const del = await alice.delete({ collection_name: name, filter: 'key in ["k3", "k4"]' });
    okOf(del, "delete");
    assert.equal(await count(name), 49);

    // An Int64 key given by the client upserts too; an autoID one cannot.
    const ints = `upsert_int_${process.pid}`;
    okOf(await alice.createCollection({
      collection_name: ints,
      fields: [{ name: "id", data_type: DataType.Int64, is_primary_key: true },
               { name: "vec", data_type: DataType.FloatVector, dim: DIM },
               { name: "v", data_type: DataType.Int32 }],
    }), "create ints");
    okOf(await alice.insert({ collection_name: ints, data: [{ id: 1, vec: vecs[0], v: 1 }, { id: 2, vec: vecs[1], v: 1 }] }), "insert");
    okOf(await alice.upsert({ collection_name: ints, data: [{ id: 2, vec: vecs[1], v: 7 }] }), "upsert ints");
    const two = await alice.query({ collection_name: ints, filter: "id == 2", output_fields: ["v"] });
    assert.deepEqual(two.data.map((r) => Number(r.v)), [7]);
    const auto = `upsert_auto_${process.pid}`;
    okOf(await alice.createCollection({
      collection_name: auto,
      fields: [{ name: "id", data_type: DataType.Int64, is_primary_key: true, autoID: true },
               { name: "vec", data_type: DataType.FloatVector, dim: DIM }],
    }), "create auto");
    const refused = await outcome(alice.upsert({ collection_name: auto, data: [{ id: 1, vec: vecs[0] }] }));
    assert.equal(refused.ok, false);
    for (const n of [name, ints, auto]) okOf(await alice.dropCollection({ collection_name: n }), "drop");
  });

  test("partitions: create, list, insert into, search and query within, drop", async () => {
    const name = `parts_${process.pid}`;
    okOf(await alice.createCollection({
      collection_name: name,
      fields: [{ name: "id", data_type: DataType.Int64, is_primary_key: true },
               { name: "vec", data_type: DataType.FloatVector, dim: DIM }],
    }), "create");
    okOf(await alice.createPartition({ collection_name: name, partition_name: "p1" }), "create p1");
    okOf(await alice.createPartition({ collection_name: name, partition_name: "p1" }), "create p1 again");
    assert.equal((await alice.hasPartition({ collection_name: name, partition_name: "p1" })).value, true);
    assert.equal((await alice.hasPartition({ collection_name: name, partition_name: "p9" })).value, false);
    const shown = await alice.showPartitions({ collection_name: name });
    okOf(shown, "show");
    assert.deepEqual(shown.partition_names, ["_default", "p1"]);

    const vecs = vectors(100, 21);
    okOf(await alice.insert({ collection_name: name, data: vecs.slice(0, 60).map((v, i) => ({ id: i, vec: v })) }), "insert default");
    okOf(await alice.insert({ collection_name: name, partition_name: "p1",
                              data: vecs.slice(60).map((v, i) => ({ id: 60 + i, vec: v })) }), "insert p1");
    assert.equal(await count(name), 100);
    assert.equal(await count(name, { partition_names: ["p1"] }), 40);
    assert.equal(await count(name, { partition_names: ["_default"] }), 60);
    const stats = await alice.getPartitionStatistics({ collection_name: name, partition_name: "p1" });
    okOf(stats, "stats");
    assert.equal(Number(stats.data.row_count), 40);

    const res = await alice.search({ collection_name: name, data: [vecs[5]], limit: 10, partition_names: ["p1"] });
    okOf(res, "search p1");
    assert.equal(res.results.length, 10);
    assert.ok(res.results.every((h) => Number(h.id) >= 60));
    const all = await alice.search({ collection_name: name, data: [vecs[5]], limit: 1 });
    assert.equal(Number(all.results[0].id), 5);

    okOf(await alice.loadPartitions({ collection_name: name, partition_names: ["p1"] }), "load p1");
    const missingPart = await outcome(alice.search({ collection_name: name, data: [vecs[0]], limit: 3,
                                                     partition_names: ["nope"] }));
    assert.equal(missingPart.ok, false);
    assert.equal(missingPart.code, 200);
    const missingInsert = await outcome(alice.insert({ collection_name: name, partition_name: "nope",
                                                       data: [{ id: 999, vec: vecs[0] }] }));
    assert.equal(missingInsert.ok, false);
    assert.equal(await count(name), 100);

    // Delete within a partition leaves the others alone.
    okOf(await alice.delete({ collection_name: name, partition_name: "p1", filter: "id < 70" }), "delete p1");
    assert.equal(await count(name), 90);
    // Another user may not touch alice's partitions, rows or index.
    const bob = new MilvusClient({ address: server.vectorAddress, username: USERS[1].access_key,
                                   password: USERS[1].secret_key, timeout: 20000 });
    await bob.connectPromise;
    for (const [what, call] of [
      ["createPartition", () => bob.createPartition({ collection_name: name, partition_name: "evil" })],
      ["dropPartition", () => bob.dropPartition({ collection_name: name, partition_name: "p1" })],
      ["showPartitions", () => bob.showPartitions({ collection_name: name })],
      ["getPartitionStatistics", () => bob.getPartitionStatistics({ collection_name: name, partition_name: "p1" })],
      ["dropIndex", () => bob.dropIndex({ collection_name: name, field_name: "vec" })],
    ]) {
      const r = await outcome(call());
      assert.equal(r.ok, false, what);
      assert.equal(r.code, 1401, `${what}: ${r.reason}`);
    }
    // The SDK describes the collection before an upsert; that is refused, so nothing is sent.
    const upsert = await outcome(bob.upsert({ collection_name: name, data: [{ id: 1, vec: vecs[0] }] }));
    assert.equal(upsert.ok, false);
    await bob.closeConnection();
    assert.deepEqual((await alice.showPartitions({ collection_name: name })).partition_names, ["_default", "p1"]);
    assert.equal(await count(name), 90);
    const dropDefault = await outcome(alice.dropPartition({ collection_name: name, partition_name: "_default" }));
    assert.equal(dropDefault.ok, false);
    okOf(await alice.releasePartitions({ collection_name: name, partition_names: ["p1"] }), "release p1");
    okOf(await alice.dropPartition({ collection_name: name, partition_name: "p1" }), "drop p1");
    assert.deepEqual((await alice.showPartitions({ collection_name: name })).partition_names, ["_default"]);
    assert.equal(await count(name), 60);
    okOf(await alice.dropCollection({ collection_name: name }), "drop");
  });

  test("every CPU index type builds and finds neighbours; GPU types without a GPU say so; DropIndex", async () => {
    const name = `indexes_${process.pid}`;
    okOf(await alice.createCollection({
      collection_name: name,
      fields: [{ name: "id", data_type: DataType.Int64, is_primary_key: true },
               { name: "vec", data_type: DataType.FloatVector, dim: DIM }],
    }), "create");
    const vecs = vectors(2000, 77);
    okOf(await alice.insert({ collection_name: name, data: vecs.map((v, i) => ({ id: i, vec: v })) }), "insert");
    okOf(await alice.flushSync({ collection_names: [name] }), "flush");
    okOf(await alice.loadCollectionSync({ collection_name: name }), "load");
    const queries = vectors(20, 1234);
    const truth = queries.map((q) => vecs.map((v, i) => [l2(v, q), i]).sort((a, b) => a[0] - b[0])
      .slice(0, 10).map((t) => t[1]));
    const cases = [
      { index_type: "FLAT", params: {}, search: {}, recall: 1.0 },
      { index_type: "IVF_FLAT", params: { nlist: 16 }, search: { nprobe: 16 }, recall: 0.99 },
      { index_type: "IVF_SQ8", params: { nlist: 16 }, search: { nprobe: 16 }, recall: 0.8 },
      { index_type: "IVF_PQ", params: { nlist: 16, m: 4, nbits: 8 }, search: { nprobe: 16 }, recall: 0.4 },
      { index_type: "HNSW", params: { M: 16, efConstruction: 100 }, search: { ef: 64 }, recall: 0.9 },
      { index_type: "AUTOINDEX", params: {}, search: {}, recall: 0.9 },
    ];
    for (const c of cases) {
      okOf(await alice.dropIndex({ collection_name: name, field_name: "vec" }), `drop before ${c.index_type}`);
      const made = await alice.createIndex({ collection_name: name, field_name: "vec", index_type: c.index_type,
                                             metric_type: "L2", params: c.params });
      okOf(made, c.index_type);
      const desc = await waitIndex(name);
      const d0 = desc.index_descriptions[0];
      assert.equal(d0.state, "Finished", `${c.index_type}: ${JSON.stringify(d0)}`);
      assert.equal(Object.fromEntries(d0.params.map((p) => [p.key, p.value])).index_type,
                   c.index_type === "AUTOINDEX" ? "HNSW" : c.index_type);
      assert.equal(Number(d0.indexed_rows), vecs.length, c.index_type);
      let hits = 0;
      for (let q = 0; q < queries.length; q++) {
        const res = await alice.search({ collection_name: name, data: [queries[q]], limit: 10, params: c.search });
        okOf(res, `search ${c.index_type}`);
        hits += res.results.filter((h) => truth[q].includes(Number(h.id))).length;
      }
      const recall = hits / (queries.length * 10);
      assert.ok(recall >= c.recall, `${c.index_type}: recall ${recall} < ${c.recall}`);
    }
    // Bad index parameters: a Milvus error naming them, and the collection keeps no index.
    okOf(await alice.dropIndex({ collection_name: name, field_name: "vec" }), "drop");
    for (const [type, params, what] of [["NOPE", {}, /NOPE/], ["IVF_FLAT", { nlist: "many" }, /nlist/],
                                        ["HNSW", { M: -3 }, /M/]]) {
      const r = await outcome(alice.createIndex({ collection_name: name, field_name: "vec", index_type: type,
                                                  metric_type: "L2", params }));
      assert.equal(r.ok, false, type);
      assert.equal(r.code, 1100, `${type}: ${r.reason}`);
      assert.match(r.reason, what);
    }
    assert.equal((await alice.describeIndex({ collection_name: name })).status.code, 700);
    for (const gpu of ["GPU_IVF_FLAT", "GPU_IVF_PQ", "GPU_CAGRA", "GPU_BRUTE_FORCE"]) {
      okOf(await alice.dropIndex({ collection_name: name, field_name: "vec" }), "drop");
      const r = await outcome(alice.createIndex({ collection_name: name, field_name: "vec", index_type: gpu,
                                                  metric_type: "L2", params: { nlist: 16, m: 4, nbits: 8 } }));
      if (!r.ok) {
        assert.match(r.reason, /GPU/i, `${gpu}: ${r.reason}`);
      } else {
        const desc = await waitIndex(name);  // a node with a GPU builds it
        assert.equal(desc.index_descriptions[0].state, "Finished", gpu);
      }
    }
    // Without an index, searches are exact; DescribeIndex says there is none.
    okOf(await alice.dropIndex({ collection_name: name, field_name: "vec" }), "final drop");
    const none = await alice.describeIndex({ collection_name: name });
    assert.equal(none.status.code, 700);
    const exact = await alice.search({ collection_name: name, data: [queries[0]], limit: 10 });
    assert.deepEqual(exact.results.map((h) => Number(h.id)), truth[0]);
    okOf(await alice.dropCollection({ collection_name: name }), "drop");
  });

  test("many clients insert and search at once: every acknowledged row is found", async () => {
    const name = `busy_${process.pid}`;
    okOf(await alice.createCollection({
      collection_name: name,
      fields: [{ name: "id", data_type: DataType.Int64, is_primary_key: true, autoID: true },
               { name: "vec", data_type: DataType.FloatVector, dim: DIM },
               { name: "writer", data_type: DataType.Int32 }],
    }), "create");
    okOf(await alice.createIndex({ collection_name: name, field_name: "vec", index_type: "HNSW",
                                   metric_type: "L2", params: { M: 8, efConstruction: 40 } }), "index");
    okOf(await alice.loadCollectionSync({ collection_name: name }), "load");
    const clients = Array.from({ length: 16 }, () =>
      new MilvusClient({ address: server.vectorAddress, username: USERS[0].access_key,
                         password: USERS[0].secret_key, timeout: 20000 }));
    await Promise.all(clients.map((c) => c.connectPromise));
    const acked = new Set();
    let writing = true, searches = 0;
    const writers = clients.slice(0, 8).map(async (c, w) => {
      for (let i = 0; i < 25; i++) {
        const r = await c.insert({ collection_name: name,
                                   data: vectors(4, w * 100 + i).map((v) => ({ vec: v, writer: w })) });
        okOf(r, "insert");
        for (const id of r.IDs.int_id.data) acked.add(String(id));
        if (i === 12 && w === 0) okOf(await c.flushSync({ collection_names: [name] }), "flush");
      }
    });
    const readers = clients.slice(8).map(async (c, r) => {
      while (writing) {
        const res = await c.search({ collection_name: name, data: vectors(1, 5000 + r)[0], limit: 5,
                                     filter: "writer >= 0" });
        okOf(res, "search");
        searches++;
      }
    });
    await Promise.all(writers);
    writing = false;
    await Promise.all(readers);
    assert.ok(searches > 0);
    assert.equal(acked.size, 8 * 25 * 4);
    assert.equal(await count(name), acked.size);
    const all = await alice.query({ collection_name: name, filter: "writer >= 0", output_fields: ["id"],
                                    limit: 16384 });
    assert.deepEqual(new Set(all.data.map((r) => String(r.id))), acked);
    await Promise.all(clients.map((c) => c.closeConnection()));
    okOf(await alice.dropCollection({ collection_name: name }), "drop");
  });

  test("REST v2: dynamic fields, VarChar ids, get, upsert, partitions, index drop", async () => {
    const http = new sdk.HttpClient({ endpoint: `http://${server.vectorAddress}`,
                                      username: USERS[0].access_key, password: USERS[0].secret_key });
    const name = `rest2_${process.pid}`;
    const created = await http.createCollection({ collectionName: name, dimension: DIM, metricType: "L2",
                                                  idType: "VarChar", params: { max_length: 32 } });
    assert.equal(created.code, 0, created.message);
    const d = await http.describeCollection({ collectionName: name });
    assert.equal(d.data.enableDynamicField, true);
    const vecs = vectors(30, 8);
    const ins = await http.insert({ collectionName: name,
                                    data: vecs.map((v, i) => ({ id: `r${i}`, vector: v, color: i % 2 ? "odd" : "even" })) });
    assert.equal(ins.code, 0, ins.message);
    assert.deepEqual(ins.data.insertIds.slice(0, 2), ["r0", "r1"]);
    const got = await http.get({ collectionName: name, id: ["r3", "r4"], outputFields: ["*"] });
    assert.equal(got.code, 0, got.message);
    assert.deepEqual(got.data.map((r) => [r.id, r.color]).sort(), [["r3", "odd"], ["r4", "even"]]);
    const q = await http.query({ collectionName: name, filter: 'color == "odd"', outputFields: ["color"], limit: 100 });
    assert.equal(q.code, 0, q.message);
    assert.equal(q.data.length, 15);
    const up = await http.upsert({ collectionName: name, data: [{ id: "r3", vector: vecs[3], color: "blue" }] });
    assert.equal(up.code, 0, up.message);
    assert.equal(up.data.upsertCount, 1);
    const after = await http.get({ collectionName: name, id: "r3", outputFields: ["color"] });
    assert.deepEqual(after.data.map((r) => r.color), ["blue"]);

    assert.equal((await http.createPartition({ collectionName: name, partitionName: "late" })).code, 0);
    const listed = await http.listPartitions({ collectionName: name });
    assert.deepEqual(listed.data, ["_default", "late"]);
    assert.deepEqual((await http.hasPartition({ collectionName: name, partitionName: "late" })).data, { has: true });
    const pins = await http.insert({ collectionName: name, partitionName: "late",
                                     data: [{ id: "p0", vector: vecs[0], color: "late" }] });
    assert.equal(pins.code, 0, pins.message);
    const ps = await http.getPartitionStatistics({ collectionName: name, partitionName: "late" });
    assert.equal(ps.data.rowCount, 1);
    const inLate = await http.search({ collectionName: name, data: [vecs[0]], limit: 5, partitionNames: ["late"],
                                       outputFields: ["color"] });
    assert.equal(inLate.code, 0, inLate.message);
    assert.deepEqual(inLate.data.map((h) => [h.id, h.color]), [["p0", "late"]]);
    assert.equal((await http.dropPartition({ collectionName: name, partitionName: "late" })).code, 0);
    assert.deepEqual((await http.listPartitions({ collectionName: name })).data, ["_default"]);

    // curl, as a shell user would: the envelope, Bearer auth, errors.
    const curl = (endpoint, body, auth = `Bearer ${USERS[0].access_key}:${USERS[0].secret_key}`) => {
      const args = ["-sS", "-X", "POST", `http://${server.vectorAddress}/v2/vectordb/${endpoint}`,
                    "-H", "Content-Type: application/json", "-d", JSON.stringify(body),
                    "-w", "\n%{http_code}"];
      if (auth) args.push("-H", `Authorization: ${auth}`);
      const out = execFileSync("curl", args, { encoding: "utf8" }).trim().split("\n");
      return { http: Number(out.pop()), body: JSON.parse(out.join("\n")) };
    };
    const listed2 = curl("collections/list", {});
    assert.equal(listed2.http, 200);
    assert.equal(listed2.body.code, 0);
    assert.ok(listed2.body.data.includes(name));
    const viaCurl = curl("entities/get", { collectionName: name, id: ["r5"], outputFields: ["color"] });
    assert.deepEqual(viaCurl.body.data, [{ id: "r5", color: "odd" }]);
    const badFilter = curl("entities/query", { collectionName: name, filter: "color ==", limit: 3 });
    assert.equal(badFilter.body.code, 1100);
    assert.match(badFilter.body.message, /filter/);
    const noAuth = curl("collections/list", {}, null);
    assert.equal(noAuth.http, 401);
    assert.equal(noAuth.body.code, 1800);

    assert.equal((await http.dropIndex({ collectionName: name, indexName: "vector" })).code, 0);
    assert.deepEqual((await http.listIndexes({ collectionName: name })).data, []);
    assert.equal((await http.dropCollection({ collectionName: name })).code, 0);
  });
});
