// vlake's Milvus-compatible gRPC API through the official Milvus Node SDK
// (@zilliz/milvus2-sdk-node, unmodified) against a real `vlake serve` this test starts: gRPC on
// the vector port beside the HTTP API, Connect / GetVersion / CheckHealth, authentication, the
// collection lifecycle (create, has, describe, show, statistics, drop) and the errors the SDK
// reads. Run: node --test milvus/milvus_sdk_test.mjs (from tests/integration; ctest does).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { USERS, startServer, stopServer } from "../vlake_server.mjs";

// The SDK comes from node_modules (scripts/install-deps.sh --test); without it the suite is
// skipped (ctest: Skipped), and fails under CI=true.
let sdk, missing;
try {
  sdk = await import("@zilliz/milvus2-sdk-node");
} catch (err) {
  missing = `Milvus Node SDK not installed (cd tests/integration/milvus && npm install): ${err.message}`;
}
if (missing && process.env.CI === "true") throw new Error(`CI=true and ${missing}`);
const { MilvusClient, DataType, ErrorCode } = sdk || {};

const DIM = 8;
const fields = () => [
  { name: "id", data_type: DataType.Int64, is_primary_key: true, autoID: true },
  { name: "vec", data_type: DataType.FloatVector, dim: DIM },
  { name: "title", data_type: DataType.VarChar, max_length: 128 },
  { name: "score", data_type: DataType.Double },
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
    if (root) rmSync(root, { recursive: true, force: true });
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
    assert.equal(byName.score.data_type, "Double");

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
                 (e) => ({ ok: false, reason: String(e.message ?? e) }));

  test("what vlake cannot store is refused with a reason, and nothing is created", async () => {
    const name = `bad_${process.pid}`;
    const json = await outcome(alice.createCollection({
      collection_name: name,
      fields: [...fields(), { name: "meta", data_type: DataType.JSON }],
    }));
    assert.equal(json.ok, false);
    assert.match(json.reason, /JSON/);
    assert.equal((await alice.hasCollection({ collection_name: name })).value, false);
    const noDim = await outcome(alice.createCollection({
      collection_name: name,
      fields: [fields()[0], { name: "vec", data_type: DataType.FloatVector }],
    }));
    assert.equal(noDim.ok, false);
    assert.match(noDim.reason, /dim/);
    assert.equal((await alice.hasCollection({ collection_name: name })).value, false);
  });

  test("an unknown database is refused", async () => {
    const other = client(USERS[0], { database: "nope" });
    const r = await other.describeCollection({ collection_name: "x" });
    assert.equal(r.status.code, 800);
    assert.match(r.status.reason, /database nope/);
    await other.closeConnection();
  });
});
