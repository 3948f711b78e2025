// The Node SDK side of bench/milvus.sh, run by `vlake bench milvus --sdk-cmd`: search QPS on
// an indexed, loaded collection at batch 1 and at BATCH, with CLIENTS concurrent MilvusClients,
// each run SECONDS long, the query vectors read from QUERIES_FILE (float32, as the C++ side
// used). Prints one JSON line: {"qps_batch1", "qps_batch", "sdk"}.
//   node bench/milvus_sdk_bench.mjs ADDRESS COLLECTION QUERIES_FILE DIM CLIENTS BATCH SECONDS PARAMS_JSON
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [address, collection, queriesFile, dimArg, clientsArg, batchArg, secondsArg, params] =
  process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const sdkDir = path.join(here, "..", "tests", "integration", process.env.VLAKE_MILVUS_SDK || "milvus");
const require = createRequire(path.join(sdkDir, "package.json"));
const { MilvusClient } = await import(pathToFileURL(require.resolve("@zilliz/milvus2-sdk-node")).href);
const version = JSON.parse(readFileSync(require.resolve("@zilliz/milvus2-sdk-node/package.json"))).version;

const dim = Number(dimArg), clients = Number(clientsArg), batch = Number(batchArg);
const seconds = Number(secondsArg);
const raw = readFileSync(queriesFile);
const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
const nq = all.length / dim;
const query = (i) => Array.from(all.subarray((i % nq) * dim, (i % nq + 1) * dim));

const pool = Array.from({ length: clients }, () => new MilvusClient({
  address, username: process.env.VLAKE_ACCESS_KEY, password: process.env.VLAKE_SECRET_KEY, timeout: 600000 }));
await Promise.all(pool.map((c) => c.connectPromise));

async function run(perRequest) {
  const end = Date.now() + seconds * 1000;
  let requests = 0;
  const t0 = performance.now();
  await Promise.all(pool.map(async (c, w) => {
    for (let i = 0; Date.now() < end; i++) {
      const start = (w * 7919 + i * perRequest) % (nq - perRequest + 1);
      const data = perRequest === 1 ? query(start) : Array.from({ length: perRequest }, (_, j) => query(start + j));
      const r = await c.search({ collection_name: collection, data, limit: 10, params: JSON.parse(params) });
      if (r.status.error_code !== "Success") throw new Error(r.status.reason);
      requests++;
    }
  }));
  return (requests * perRequest) / ((performance.now() - t0) / 1000);
}

const out = { sdk: version, qps_batch1: await run(1), qps_batch: await run(batch) };
await Promise.all(pool.map((c) => c.closeConnection()));
console.log(JSON.stringify(out));
