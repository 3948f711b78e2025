// Starts and stops a real `vlake serve` for the Node test suites (node/s3_sdk_test.mjs,
// milvus/milvus_sdk_test.mjs): free ports on 127.0.0.1, a users file with the same two users as
// vlake_server.py, the log in the test's folder. VLAKE_BIN names the binary (ctest sets it).
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
export const VLAKE_BIN =
  process.env.VLAKE_BIN || path.join(REPO, "build", "apps", "vlake", "vlake");

export const USERS = [
  { access_key: "AKIDVLAKETESTALICE01", secret_key: "alice-secret-key-0123456789abcdefghij",
    user_id: "alice", display_name: "Alice" },
  { access_key: "AKIDVLAKETESTBOB0002", secret_key: "bob-secret-key-0123456789abcdefghijkl",
    user_id: "bob", display_name: "Bob" },
];

// Starts `vlake serve` on free ports and resolves with {proc, endpoint (S3, "http://..."),
// vectorAddress ("127.0.0.1:PORT" of the vector port, or null when it is off), logPath}, read
// from what it prints once it serves.
export function startServer(root, extraArgs = []) {
  const usersFile = path.join(root, "users.json");
  writeFileSync(usersFile, JSON.stringify({ users: USERS }));
  const logPath = path.join(root, "server.log");
  const logFd = openSync(logPath, "a");
  const args = ["serve", "--listen", "127.0.0.1:0", "--vector-listen", "127.0.0.1:0",
                "--data", path.join(root, "data"), "--users", usersFile, ...extraArgs];
  if (process.env.VLAKE_LOG_LEVEL) args.push("--log-level", process.env.VLAKE_LOG_LEVEL);
  const proc = spawn(VLAKE_BIN, args, { stdio: ["ignore", "pipe", logFd] });
  closeSync(logFd);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => fail(new Error("vlake did not start in 20 s")), 20000);
    function fail(err) {
      clearTimeout(timer);
      proc.kill("SIGKILL");
      let log = "";
      try { log = readFileSync(logPath, "utf8"); } catch {}
      reject(new Error(`${err.message}\nstdout:\n${out}\nlog:\n${log}`));
    }
    proc.on("error", fail);
    proc.on("exit", (code) => fail(new Error(`vlake exited early (${code})`)));
    proc.stdout.on("data", (chunk) => {
      out += chunk.toString();
      const endpoint = out.match(/endpoint:\s+(http:\/\/127\.0\.0\.1:\d+)/);
      if (endpoint && /\n\s+try:/.test(out)) {
        clearTimeout(timer);
        proc.removeAllListeners("exit");
        proc.stdout.resume();  // keep draining so the server never blocks on a full pipe
        const vector = out.match(/vector db:\s+http:\/\/(127\.0\.0\.1:\d+)/);
        resolve({ proc, endpoint: endpoint[1], vectorAddress: vector ? vector[1] : null,
                  logPath });
      }
    });
  });
}

export function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const killer = setTimeout(() => proc.kill("SIGKILL"), 30000);
    proc.once("exit", () => { clearTimeout(killer); resolve(); });
    proc.kill("SIGTERM");
  });
}
