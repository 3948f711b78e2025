// Loads the Milvus Node SDK the tests run against: tests/integration/milvus (the 2.5.x line)
// by default, or the package folder VLAKE_MILVUS_SDK names (e.g. "milvus3", the 3.0.x line),
// each installed by scripts/install-deps.sh --test. Exports {sdk, missing, version}: `missing`
// says why the SDK is absent (the suites then skip, and fail under CI=true).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const folder = path.resolve(here, "..", process.env.VLAKE_MILVUS_SDK || "milvus");

export let sdk, missing, version;
try {
  const require = createRequire(path.join(folder, "package.json"));
  const entry = require.resolve("@zilliz/milvus2-sdk-node");
  sdk = await import(pathToFileURL(entry).href);
  const pkg = require.resolve("@zilliz/milvus2-sdk-node/package.json");
  version = JSON.parse(readFileSync(pkg, "utf8")).version;
} catch (err) {
  missing = `Milvus Node SDK not installed in ${folder} (npm install there): ${err.message}`;
}
if (missing && process.env.CI === "true") throw new Error(`CI=true and ${missing}`);
if (version) console.log(`# Milvus Node SDK ${version} from ${folder}`);
