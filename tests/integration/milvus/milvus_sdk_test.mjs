// vlake's Milvus-compatible gRPC API through the official Milvus Node SDK
// (@zilliz/milvus2-sdk-node, unmodified) against a real `vlake serve` this test starts: gRPC on
// the vector port beside the HTTP API, Connect / GetVersion / CheckHealth, authentication, the
// collection lifecycle (create, has, describe, show, statistics, drop) and the errors the SDK
// reads. Run: node --test milvus/milvus_sdk_test.mjs (from tests/integration; ctest does).
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { USERS, startServer, stopServer } from "../vlake_server.mjs";

// The SDK comes from node_modules (scripts/install-deps.sh --test; sdk.mjs picks the line);
// without it the suite is skipped (ctest: Skipped), and fails under CI=true. grpc-js and
// proto-loader (pinned beside the 2.5.x SDK) drive the raw keep-alive client.
import { missing as sdkMissing, sdk } from "./sdk.mjs";

let grpc, protoLoader, missing = sdkMissing;
try {
  grpc = await import("@grpc/grpc-js");
  protoLoader = await import("@grpc/proto-loader");
} catch (err) {
  missing ??= `grpc-js not installed (cd tests/integration/milvus && npm install): ${err.message}`;
}
if (missing && process.env.CI === "true") throw new Error(`CI=true and ${missing}`);
const { MilvusClient, DataType, ErrorCode } = sdk || {};

const DIM = 8;
const fields = () => [
  { name: "id", data_type: DataType.Int64, is_primary_key: true, autoID: true },
  { name: "vec", data_type: DataType.FloatVector, dim: DIM },
  { name: "title", data_type: DataType.VarChar, max_length: 128 },
  { name: "rank", data_type: DataType.Double },  // not "score": hits carry a score
];

describe("Milvus Node SDK against vlake", { skip: missing || false }, () => {
  let root, server, alice, bob;
  const client = (user, extra = {}) =>
    new MilvusClient({ address: server.vectorAddress, username: user.access_key,
                       password: user.secret_key, timeout: 20000, ...extra });

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), "vlake-milvus-"));
    server = await startServer(root);
    assert.ok(server.vectorAddress, "vlake serve printed no vector db address");
    alice = client(USERS[0]);
    bob = client(USERS[1]);
    await alice.connectPromise;
    await bob.connectPromise;
  });

  after(async () => {
    await alice?.closeConnection();
    await bob?.closeConnection();
    if (server) await stopServer(server.proc);
    if (root && !process.env.VLAKE_KEEP_TEST_DIR) rmSync(root, { recursive: true, force: true });
  });

  test("connects (a server identifier), reports its version and health", async () => {
    assert.equal(alice.connectStatus, sdk.CONNECT_STATUS.CONNECTED);
    const version = await alice.getVersion();
    assert.equal(version.status.error_code, ErrorCode.SUCCESS);
    assert.match(version.version, /^v2\.\d+\.\d+/);
    const health = await alice.checkHealth();
    assert.equal(health.isHealthy, true);
    const dbs = await alice.listDatabases();
    assert.deepEqual(dbs.db_names, ["default"]);
  });

  test("the HTTP API still answers on the same port", async () => {
    const resp = await fetch(`http://${server.vectorAddress}/v1/health`);
    assert.equal(resp.status, 200);
  });

  test("refuses a wrong password and a missing user", async () => {
    const wrong = client({ access_key: USERS[0].access_key, secret_key: "not-the-secret" });
    await assert.rejects(wrong.connectPromise, /UNAUTHENTICATED: the access key or the secret key/);
    await assert.rejects(wrong.getVersion(), /UNAUTHENTICATED/);
    await wrong.closeConnection();
    const anonymous = new MilvusClient({ address: server.vectorAddress, timeout: 20000 });
    await assert.rejects(anonymous.connectPromise, /UNAUTHENTICATED: credentials required/);
    await assert.rejects(anonymous.describeCollection({ collection_name: "x" }), /UNAUTHENTICATED/);
    await anonymous.closeConnection();
  });

  test("collection lifecycle: create, has, describe, show, statistics, drop", async () => {
    const name = `docs_${process.pid}`;
    const created = await alice.createCollection({ collection_name: name, fields: fields() });
    assert.equal(created.error_code, ErrorCode.SUCCESS, created.reason);
    // Again with the same schema: Milvus answers success.
    const again = await alice.createCollection({ collection_name: name, fields: fields() });
    assert.equal(again.error_code, ErrorCode.SUCCESS, again.reason);

    const has = await alice.hasCollection({ collection_name: name });
    assert.equal(has.value, true);
    const hasNot = await alice.hasCollection({ collection_name: `${name}_none` });
    assert.equal(hasNot.value, false);

    const d = await alice.describeCollection({ collection_name: name });
    assert.equal(d.status.error_code, ErrorCode.SUCCESS, d.status.reason);
    assert.equal(d.collection_name, name);
    assert.ok(Number(d.collectionID) > 0);
    const byName = Object.fromEntries(d.schema.fields.map((f) => [f.name, f]));
    assert.equal(byName.id.data_type, "Int64");
    assert.equal(byName.id.is_primary_key, true);
    assert.equal(byName.id.autoID, true);
    assert.equal(byName.vec.data_type, "FloatVector");
    assert.equal(String(byName.vec.dim ?? byName.vec.type_params.find((p) => p.key === "dim").value), String(DIM));
    assert.equal(byName.title.data_type, "VarChar");
    assert.equal(byName.rank.data_type, "Double");

    const shown = await alice.showCollections();
    assert.ok(shown.data.some((c) => c.name === name), JSON.stringify(shown.data));
    const stats = await alice.getCollectionStatistics({ collection_name: name });
    assert.equal(stats.status.error_code, ErrorCode.SUCCESS);
    assert.equal(stats.data.row_count, "0");

    // Another user neither lists nor reads it.
    const bobShown = await bob.showCollections();
    assert.ok(!bobShown.data.some((c) => c.name === name));
    const bobDesc = await bob.describeCollection({ collection_name: name });
    assert.equal(bobDesc.status.error_code, "PermissionDenied");
    assert.equal(bobDesc.status.code, 1401);

    const dropped = await alice.dropCollection({ collection_name: name });
    assert.equal(dropped.error_code, ErrorCode.SUCCESS, dropped.reason);
    const gone = await alice.describeCollection({ collection_name: name });
    assert.equal(gone.status.error_code, ErrorCode.CollectionNotExists);
    assert.equal(gone.status.code, 100);
    assert.equal((await alice.hasCollection({ collection_name: name })).value, false);
  });

  // The SDK returns some error statuses and throws others (its own checks, or the reason).
  const outcome = (promise) =>
    promise.then((r) => ({ ok: (r.error_code ?? r.status?.error_code) === ErrorCode.SUCCESS,
                           reason: r.reason ?? r.status?.reason ?? "" }),
                 // 2.5.x throws Errors, 3.0.x the status itself.
                 (e) => ({ ok: false, reason: String(e?.message ?? e?.reason ?? e) }));

  test("what vlake cannot store is refused with a reason, and nothing is created", async () => {
    const name = `bad_${process.pid}`;
    const binary = await outcome(alice.createCollection({
      collection_name: name,
      fields: [...fields(), { name: "bits", data_type: DataType.BinaryVector, dim: 16 }],
    }));
    assert.equal(binary.ok, false);
    assert.match(binary.reason, /BinaryVector/);
    assert.equal((await alice.hasCollection({ collection_name: name })).value, false);
    const array = await outcome(alice.createCollection({
      collection_name: name,
      fields: [...fields(), { name: "tags", data_type: DataType.Array, element_type: DataType.Int64,
                              max_capacity: 4 }],
    }));
    assert.equal(array.ok, false);
    assert.match(array.reason, /Array/);
    assert.equal((await alice.hasCollection({ collection_name: name })).value, false);
    const noDim = await outcome(alice.createCollection({
      collection_name: name,
      fields: [fields()[0], { name: "vec", data_type: DataType.FloatVector }],
    }));
    assert.equal(noDim.ok, false);
    assert.match(noDim.reason, /dim/);
    assert.equal((await alice.hasCollection({ collection_name: name })).value, false);
  });

  // Seeded clustered vectors: rows near 8 centers, so an index has real structure to find.
  function rowsOf(n, seed) {
    let x = seed >>> 0;
    const rand = () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const rows = [];
    for (let i = 0; i < n; i++) {
      const c = i % 8;
      rows.push({
        vec: Array.from({ length: DIM }, (_, d) => (d === c ? 10 : 0) + rand()),
        title: `t${i}`,
        rank: i / n,
      });
    }
    return rows;
  }
  const l2 = (a, b) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);

  test("insert, flush, index, load, search, query, delete: the standard workflow", async () => {
    const name = `flow_${process.pid}`;
    assert.equal((await alice.createCollection({ collection_name: name, fields: fields() })).error_code,
                 ErrorCode.SUCCESS);
    const rows = rowsOf(600, 7);
    const ins = await alice.insert({ collection_name: name, data: rows });
    assert.equal(ins.status.error_code, ErrorCode.SUCCESS, ins.status.reason);
    assert.equal(Number(ins.insert_cnt), rows.length);
    const ids = ins.IDs.int_id.data.map(Number);
    assert.equal(new Set(ids).size, rows.length);
    // Growing rows are visible at once.
    const counted = await alice.query({ collection_name: name, output_fields: ["count(*)"], filter: "" });
    assert.equal(counted.status.error_code, ErrorCode.SUCCESS, counted.status.reason);
    assert.equal(Number(counted.data[0]["count(*)"]), rows.length);

    const flushed = await alice.flushSync({ collection_names: [name] });
    assert.equal(flushed.status.error_code, ErrorCode.SUCCESS, flushed.status.reason);
    const noIndex = await alice.describeIndex({ collection_name: name });
    assert.equal(noIndex.status.error_code, "IndexNotExist");
    assert.equal(noIndex.status.code, 700);

    const idx = await alice.createIndex({ collection_name: name, field_name: "vec",
                                          index_type: "HNSW", metric_type: "L2",
                                          params: { M: 16, efConstruction: 100 } });
    assert.equal(idx.error_code, ErrorCode.SUCCESS, idx.reason);
    let desc;
    for (let i = 0; i < 100; i++) {
      desc = await alice.describeIndex({ collection_name: name });
      if (desc.index_descriptions?.[0]?.state === "Finished") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(desc.status.error_code, ErrorCode.SUCCESS, desc.status.reason);
    const d0 = desc.index_descriptions[0];
    assert.equal(d0.state, "Finished", JSON.stringify(d0));
    const params = Object.fromEntries(d0.params.map((p) => [p.key, p.value]));
    assert.equal(params.index_type, "HNSW");
    assert.equal(params.metric_type, "L2");
    assert.equal(Number(d0.total_rows), rows.length);

    const load = await alice.loadCollectionSync({ collection_name: name });
    assert.equal(load.error_code, ErrorCode.SUCCESS, load.reason);
    const state = await alice.getLoadState({ collection_name: name });
    assert.equal(state.state, "LoadStateLoaded");

    // Search: recall against brute force, the filter, output fields, offset.
    const queries = rowsOf(20, 99).map((r) => r.vec);
    let hits = 0;
    for (const q of queries) {
      const res = await alice.search({ collection_name: name, data: [q], limit: 10,
                                       output_fields: ["title", "rank"], params: { ef: 64 } });
      assert.equal(res.status.error_code, ErrorCode.SUCCESS, res.status.reason);
      assert.equal(res.results.length, 10);
      const truth = rows.map((r, i) => [l2(r.vec, q), ids[i]]).sort((a, b) => a[0] - b[0])
        .slice(0, 10).map((t) => t[1]);
      hits += res.results.filter((h) => truth.includes(Number(h.id))).length;
      const first = res.results[0];
      const row = rows[ids.indexOf(Number(first.id))];
      assert.equal(first.title, row.title);
      assert.ok(Math.abs(first.score - l2(row.vec, q)) < 1e-3 * (1 + first.score));
      for (let i = 1; i < res.results.length; i++) {
        assert.ok(res.results[i].score >= res.results[i - 1].score);
      }
    }
    assert.ok(hits / (queries.length * 10) >= 0.9, `recall ${hits / (queries.length * 10)}`);
    const filtered = await alice.search({ collection_name: name, data: [queries[0]], limit: 5,
                                          filter: "rank >= 0.5 and title != 't599'",
                                          output_fields: ["rank", "title"] });
    assert.equal(filtered.results.length, 5);
    for (const h of filtered.results) assert.ok(h.score >= 0 && Number(h.id) > 0);
    for (const h of filtered.results) {
      const row = rows[ids.indexOf(Number(h.id))];
      assert.ok(row.rank >= 0.5 && row.title !== "t599");
      assert.equal(h.rank, row.rank);
    }
    const page1 = await alice.search({ collection_name: name, data: [queries[1]], limit: 4 });
    const page2 = await alice.search({ collection_name: name, data: [queries[1]], limit: 2, offset: 2 });
    assert.deepEqual(page2.results.map((h) => h.id), page1.results.slice(2).map((h) => h.id));
    const two = await alice.search({ collection_name: name, data: [queries[0], queries[1]], limit: 3 });
    assert.equal(two.results.length, 2);
    assert.equal(two.results[1].length, 3);

    // Query by expression with limit and offset; then delete and check nothing comes back.
    const some = ids.slice(0, 5);
    const q = await alice.query({ collection_name: name, filter: `id in [${some.join(",")}]`,
                                  output_fields: ["title", "vec"] });
    assert.equal(q.status.error_code, ErrorCode.SUCCESS, q.status.reason);
    assert.deepEqual(q.data.map((r) => Number(r.id)).sort((a, b) => a - b), [...some].sort((a, b) => a - b));
    for (const r of q.data) {
      const row = rows[ids.indexOf(Number(r.id))];
      assert.equal(r.title, row.title);
      assert.equal(r.vec.length, DIM);
    }
    const limited = await alice.query({ collection_name: name, filter: "rank >= 0", limit: 7, offset: 3 });
    assert.equal(limited.data.length, 7);
    const del = await alice.delete({ collection_name: name, filter: `id in [${some.join(",")}]` });
    assert.equal(del.status.error_code, ErrorCode.SUCCESS, del.status.reason);
    assert.equal(Number(del.delete_cnt), some.length);
    const after = await alice.query({ collection_name: name, filter: `id in [${some.join(",")}]` });
    assert.equal(after.data.length, 0);
    const stats = await alice.getCollectionStatistics({ collection_name: name });
    assert.equal(Number(stats.data.row_count), rows.length - some.length);
    for (const qv of queries.slice(0, 5)) {
      const res = await alice.search({ collection_name: name, data: [qv], limit: 20 });
      for (const h of res.results) assert.ok(!some.includes(Number(h.id)));
    }
    assert.equal((await alice.releaseCollection({ collection_name: name })).error_code, ErrorCode.SUCCESS);
    assert.equal((await alice.getLoadState({ collection_name: name })).state, "LoadStateNotLoad");
    await alice.dropCollection({ collection_name: name });
  });

  test("the metric comes from CreateIndex; IVF_FLAT under IP", async () => {
    const name = `ip_${process.pid}`;
    await alice.createCollection({ collection_name: name, fields: fields() });
    const rows = rowsOf(400, 3);
    await alice.insert({ collection_name: name, data: rows });
    const idx = await alice.createIndex({ collection_name: name, field_name: "vec",
                                          index_type: "IVF_FLAT", metric_type: "IP",
                                          params: { nlist: 8 } });
    assert.equal(idx.error_code, ErrorCode.SUCCESS, idx.reason);
    await alice.loadCollectionSync({ collection_name: name });
    const q = rows[5].vec;
    const res = await alice.search({ collection_name: name, data: [q], limit: 5, metric_type: "IP",
                                     params: { nprobe: 8 } });
    assert.equal(res.status.error_code, ErrorCode.SUCCESS, res.status.reason);
    for (let i = 1; i < res.results.length; i++) assert.ok(res.results[i].score <= res.results[i - 1].score);
    const wrong = await alice.search({ collection_name: name, data: [q], limit: 5, metric_type: "L2" });
    assert.notEqual(wrong.status.error_code, ErrorCode.SUCCESS);
    assert.match(wrong.status.reason, /metric type not match/);
    await alice.dropCollection({ collection_name: name });
  });

  test("bad input gets a Milvus error and writes nothing", async () => {
    const name = `badin_${process.pid}`;
    await alice.createCollection({ collection_name: name, fields: fields() });
    const wrongDim = await outcome(alice.insert({ collection_name: name,
      data: [{ vec: [1, 2, 3], title: "x", rank: 1 }] }));
    assert.equal(wrongDim.ok, false);
    const unknown = await outcome(alice.insert({ collection_name: name,
      data: [{ vec: rowsOf(1, 1)[0].vec, title: "x", rank: 1, nope: 3 }] }));
    assert.equal(unknown.ok, false);
    const badExpr = await alice.query({ collection_name: name, filter: "rank >>> 3" });
    assert.notEqual(badExpr.status.error_code, ErrorCode.SUCCESS);
    assert.equal(badExpr.status.code, 1100);
    const noColl = await outcome(alice.search({ collection_name: `${name}_none`, data: [rowsOf(1, 1)[0].vec], limit: 3 }));
    assert.equal(noColl.ok, false);
    const counted = await alice.query({ collection_name: name, output_fields: ["count(*)"], filter: "" });
    assert.equal(Number(counted.data[0]["count(*)"]), 0);
    await alice.dropCollection({ collection_name: name });
  });

  // Clients ping idle connections (other SDKs every 10 s); a server that counts them as
  // misbehaving answers GOAWAY "too_many_pings" and the client reconnects. A raw gRPC client
  // pinging every second for 6 s must keep one READY connection throughout.
  test("keep-alive pings from an idle client never get the connection closed", async () => {
    const require = createRequire(import.meta.url);
    const protoDir = path.join(path.dirname(require.resolve("@zilliz/milvus2-sdk-node/package.json")),
                               "dist", "proto", "proto");
    const def = protoLoader.loadSync(path.join(protoDir, "milvus.proto"),
                                     { includeDirs: [protoDir], keepCase: true });
    const Service = grpc.loadPackageDefinition(def).milvus.proto.milvus.MilvusService;
    const raw = new Service(server.vectorAddress, grpc.credentials.createInsecure(), {
      "grpc.keepalive_time_ms": 1000, "grpc.keepalive_timeout_ms": 2000,
      "grpc.keepalive_permit_without_calls": 1,
    });
    const md = new grpc.Metadata();
    md.set("authorization", Buffer.from(`${USERS[0].access_key}:${USERS[0].secret_key}`).toString("base64"));
    const call = () => new Promise((resolve, reject) =>
      raw.GetVersion({}, md, (err, resp) => (err ? reject(err) : resolve(resp))));
    assert.match((await call()).version, /^v2/);
    const channel = raw.getChannel();
    const states = [];
    let closed = false;
    const watch = () => channel.watchConnectivityState(channel.getConnectivityState(false),
      Date.now() + 60000, () => {
        if (closed) return;
        states.push(channel.getConnectivityState(false));
        watch();
      });
    watch();
    await new Promise((r) => setTimeout(r, 6000));
    assert.deepEqual(states, [], `the connection changed state while idle: ${states}`);
    assert.equal(channel.getConnectivityState(false), grpc.connectivityState.READY);
    assert.match((await call()).version, /^v2/);
    closed = true;
    raw.close();
  });

  // RESTful API v2 on the same port: the SDK's HttpClient and plain fetch (what curl sends).
  test("REST v2: quick create, insert, search, query, delete, describe, errors", async () => {
    const http = new sdk.HttpClient({ endpoint: `http://${server.vectorAddress}`,
                                      username: USERS[0].access_key, password: USERS[0].secret_key });
    const name = `rest_${process.pid}`;
    const created = await http.createCollection({ collectionName: name, dimension: DIM,
                                                  metricType: "L2", autoID: true });
    assert.equal(created.code, 0, created.message);
    assert.deepEqual((await http.hasCollection({ collectionName: name })).data, { has: true });
    assert.ok((await http.listCollections()).data.includes(name));
    const d = await http.describeCollection({ collectionName: name });
    assert.equal(d.code, 0, d.message);
    assert.deepEqual(d.data.fields.map((f) => [f.name, f.type]), [["id", "Int64"], ["vector", "FloatVector"]]);
    assert.equal(d.data.load, "LoadStateLoaded");
    const rows = rowsOf(200, 11).map((r) => ({ vector: r.vec }));
    const ins = await http.insert({ collectionName: name, data: rows });
    assert.equal(ins.code, 0, ins.message);
    assert.equal(ins.data.insertCount, rows.length);
    const ids = ins.data.insertIds;
    assert.equal(typeof ids[0], "string");  // int64 as strings unless Accept-Type-Allow-Int64
    const res = await http.search({ collectionName: name, data: [rows[3].vector], limit: 5,
                                    outputFields: ["id"] });
    assert.equal(res.code, 0, res.message);
    assert.equal(res.data.length, 5);
    assert.equal(String(res.data[0].id), ids[3]);
    assert.ok(res.data[0].distance < 1e-4);
    const idx = await http.describeIndex({ collectionName: name, indexName: "vector" });
    assert.equal(idx.code, 0, idx.message);
    assert.equal(idx.data[0].metricType, "L2");
    const q = await http.query({ collectionName: name, filter: `id in [${ids.slice(0, 3).join(",")}]`,
                                 outputFields: ["id", "vector"] });
    assert.equal(q.code, 0, q.message);
    assert.equal(q.data.length, 3);
    const del = await http.delete({ collectionName: name, filter: `id in [${ids[3]}]` });
    assert.equal(del.code, 0, del.message);
    const again = await http.search({ collectionName: name, data: [rows[3].vector], limit: 5 });
    assert.ok(!again.data.some((h) => String(h.id) === ids[3]));
    const stats = await http.getCollectionStatistics({ collectionName: name });
    assert.equal(stats.data.rowCount, rows.length - 1);

    // Plain HTTP: errors in the envelope, 401 without credentials.
    const post = (path, body, auth = `Bearer ${USERS[0].access_key}:${USERS[0].secret_key}`) =>
      fetch(`http://${server.vectorAddress}/v2/vectordb/${path}`, {
        method: "POST", headers: { "Content-Type": "application/json", ...(auth ? { Authorization: auth } : {}) },
        body: JSON.stringify(body) });
    const missing = await (await post("collections/describe", { collectionName: `${name}_none` })).json();
    assert.equal(missing.code, 100);
    const wrongDim = await (await post("entities/insert", { collectionName: name, data: [{ vector: [1, 2] }] })).json();
    assert.equal(wrongDim.code, 1100);
    const anon = await post("collections/list", {}, null);
    assert.equal(anon.status, 401);
    assert.equal((await anon.json()).code, 1800);
    const wrong = await post("collections/list", {}, `Bearer ${USERS[0].access_key}:nope`);
    assert.equal(wrong.status, 401);
    const bobView = await (await post("collections/describe", { collectionName: name },
                                      `Bearer ${USERS[1].access_key}:${USERS[1].secret_key}`)).json();
    assert.equal(bobView.code, 1401);
    assert.equal((await http.dropCollection({ collectionName: name })).code, 0);
  });

  test("an unknown database is refused", async () => {
    const other = client(USERS[0], { database: "nope" });
    const r = await other.describeCollection({ collection_name: "x" });
    assert.equal(r.status.code, 800);
    assert.match(r.status.reason, /database nope/);
    await other.closeConnection();
  });
});
