// The S3 surface through the AWS SDK for JavaScript v3 (its default flexible checksums: CRC32,
// sent as an aws-chunked trailer for stream bodies) against a real vlake server that this test
// starts itself. Run: node --test s3_sdk_test.mjs   (VLAKE_BIN names the binary; ctest sets it)

import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { USERS, startServer, stopServer } from "../vlake_server.mjs";

// The SDK comes from node_modules (npm install here, or scripts/install-deps.sh --test); without
// it the suite is skipped (ctest: Skipped), and fails under CI=true.
let sdk, storage, missing;
try {
  sdk = await import("@aws-sdk/client-s3");
  storage = await import("@aws-sdk/lib-storage");
} catch (err) {
  missing = `AWS SDK not installed (cd tests/integration/node && npm install): ${err.message}`;
}
// In CI the install script must have provided it: its absence fails the run.
if (missing && process.env.CI === "true") throw new Error(`CI=true and ${missing}`);
const {
  S3Client, CreateBucketCommand, DeleteBucketCommand, PutObjectCommand, GetObjectCommand,
  HeadObjectCommand, ListObjectsV2Command, DeleteObjectsCommand, CopyObjectCommand,
  HeadBucketCommand,
} = sdk || {};
const { Upload } = storage || {};

const MIB = 1024 * 1024;

const md5 = (buf) => createHash("md5").update(buf).digest("hex");

async function bodyBytes(resp) {
  return Buffer.from(await resp.Body.transformToByteArray());
}

// A Readable that yields `buf` in small, uneven pieces (so the SDK cannot treat it as a buffer).
function streamOf(buf, piece = 64 * 1024 + 7) {
  let off = 0;
  return new Readable({
    read() {
      if (off >= buf.length) return this.push(null);
      const end = Math.min(buf.length, off + piece);
      this.push(buf.subarray(off, end));
      off = end;
    },
  });
}

describe("AWS SDK for JavaScript v3 against vlake", { skip: missing || false }, () => {
  let root, server, s3;
  const sent = [];  // {command, method, path, headers} of every request, as it went out
  const bucket = `js-sdk-${process.pid}`;

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), "vlake-js-"));
    server = await startServer(root);
    s3 = new S3Client({
      endpoint: server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      maxAttempts: 1,
      credentials: { accessKeyId: USERS[0].access_key, secretAccessKey: USERS[0].secret_key },
    });
    // Deserialize-step middleware run after signing, next to the HTTP handler: they see the
    // request exactly as it is sent.
    s3.middlewareStack.add((next, context) => async (args) => {
      const req = args.request;
      sent.push({ command: context.commandName, method: req.method, path: req.path,
                  headers: { ...req.headers } });
      return next(args);
    }, { step: "deserialize", name: "vlakeRecordHeaders" });
  });

  after(async () => {
    if (s3) s3.destroy();
    let problems = [];
    if (server) {
      await stopServer(server.proc);
      problems = readFileSync(server.logPath, "utf8").split("\n")
        .filter((l) => /level=(error|warn)/.test(l));
    }
    if (root) rmSync(root, { recursive: true, force: true });
    assert.deepEqual(problems, [], "the server logged errors");
  });

  const headerOf = (rec, name) => {
    for (const [k, v] of Object.entries(rec.headers)) if (k.toLowerCase() === name) return v;
    return undefined;
  };

  test("create bucket", async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  });

  const small = randomBytes(100 * 1024 + 3);
  const streamed = randomBytes(3 * MIB + 11);
  const big = randomBytes(12 * MIB + 5);

  test("PutObject with a Buffer body: ETag is the MD5, CRC32 checksum header sent", async () => {
    const before = sent.length;
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "small.bin",
                                                     Body: small }));
    assert.equal(put.ETag, `"${md5(small)}"`);
    const rec = sent.slice(before).find((r) => r.command === "PutObjectCommand");
    assert.ok(headerOf(rec, "x-amz-checksum-crc32"), JSON.stringify(rec.headers));
    assert.ok(put.ChecksumCRC32, "server echoes x-amz-checksum-crc32");
    assert.equal(put.ChecksumCRC32, headerOf(rec, "x-amz-checksum-crc32"));
  });

  test("PutObject with a stream body goes aws-chunked with a CRC32 trailer", async () => {
    const before = sent.length;
    const put = await s3.send(new PutObjectCommand({
      Bucket: bucket, Key: "dir/streamed.bin", Body: streamOf(streamed),
      ContentLength: streamed.length }));
    assert.equal(put.ETag, `"${md5(streamed)}"`);
    assert.ok(put.ChecksumCRC32);
    const rec = sent.slice(before).find((r) => r.command === "PutObjectCommand");
    assert.equal(headerOf(rec, "x-amz-content-sha256"), "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                 JSON.stringify(rec.headers));
    assert.equal(headerOf(rec, "x-amz-trailer"), "x-amz-checksum-crc32");
    assert.match(headerOf(rec, "content-encoding") || "", /aws-chunked/);
    assert.equal(headerOf(rec, "x-amz-decoded-content-length"), String(streamed.length));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/streamed.bin" }));
    assert.ok((await bodyBytes(got)).equals(streamed));
  });

  test("lib-storage Upload of a 12 MiB stream is a multipart upload", async () => {
    const before = sent.length;
    const up = new Upload({ client: s3, params: { Bucket: bucket, Key: "dir/big.bin",
                                                  Body: streamOf(big) },
                            partSize: 5 * MIB, queueSize: 2 });
    const res = await up.done();
    const cmds = sent.slice(before).map((r) => r.command);
    assert.ok(cmds.includes("CreateMultipartUploadCommand"), cmds.join(","));
    assert.equal(cmds.filter((c) => c === "UploadPartCommand").length, 3);
    assert.ok(cmds.includes("CompleteMultipartUploadCommand"));
    assert.match(res.ETag, /^"[0-9a-f]{32}-3"$/);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "dir/big.bin" }));
    assert.equal(head.ContentLength, big.length);
    assert.equal(head.ETag, res.ETag);
  });

  test("the SDK's trailer mode was used at least once", () => {
    const trailer = sent.filter(
      (r) => headerOf(r, "x-amz-content-sha256") === "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    assert.ok(trailer.length >= 1, "no request used STREAMING-UNSIGNED-PAYLOAD-TRAILER");
  });

  test("GetObject returns the bytes; HeadObject ETag", async () => {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "small.bin" }));
    assert.ok((await bodyBytes(got)).equals(small));
    assert.equal(got.ETag, `"${md5(small)}"`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "small.bin" }));
    assert.equal(head.ETag, `"${md5(small)}"`);
    assert.equal(head.ContentLength, small.length);
    const bigGot = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/big.bin" }));
    assert.ok((await bodyBytes(bigGot)).equals(big));
  });

  test("ranged GET", async () => {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/big.bin",
                                                     Range: "bytes=5242870-5242900" }));
    assert.equal(got.ContentRange, `bytes 5242870-5242900/${big.length}`);
    assert.ok((await bodyBytes(got)).equals(big.subarray(5242870, 5242901)));
    const tail = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "small.bin",
                                                      Range: "bytes=-10" }));
    assert.ok((await bodyBytes(tail)).equals(small.subarray(small.length - 10)));
  });

  test("GetObject with ChecksumMode ENABLED validates the CRC32", async () => {
    for (const [key, data] of [["small.bin", small], ["dir/streamed.bin", streamed]]) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key,
                                                       ChecksumMode: "ENABLED" }));
      assert.ok(got.ChecksumCRC32, `${key}: no x-amz-checksum-crc32 in the response`);
      // Reading the body to the end makes the SDK compare the CRC32; a mismatch throws.
      assert.ok((await bodyBytes(got)).equals(data));
    }
    // A multipart object: the SDK skips composite checksums ("...-N") but must not fail.
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/big.bin",
                                                     ChecksumMode: "ENABLED" }));
    assert.ok((await bodyBytes(got)).equals(big));
  });

  test("CopyObject", async () => {
    const res = await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: "copy of small",
                                                      CopySource: `${bucket}/small.bin` }));
    assert.equal(res.CopyObjectResult.ETag, `"${md5(small)}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "copy of small" }));
    assert.ok((await bodyBytes(got)).equals(small));
  });

  test("ListObjectsV2 (flat, delimiter, paging)", async () => {
    const all = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.deepEqual(all.Contents.map((o) => o.Key),
                     ["copy of small", "dir/big.bin", "dir/streamed.bin", "small.bin"]);
    assert.equal(all.KeyCount, 4);
    assert.equal(all.IsTruncated, false);
    const bySize = Object.fromEntries(all.Contents.map((o) => [o.Key, o.Size]));
    assert.equal(bySize["dir/big.bin"], big.length);
    const delim = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: "/" }));
    assert.deepEqual((delim.CommonPrefixes || []).map((p) => p.Prefix), ["dir/"]);
    assert.deepEqual(delim.Contents.map((o) => o.Key), ["copy of small", "small.bin"]);
    const keys = [];
    let token;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 3,
                                                            ContinuationToken: token }));
      keys.push(...page.Contents.map((o) => o.Key));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    assert.deepEqual(keys, all.Contents.map((o) => o.Key));
  });

  test("DeleteObjects, then DeleteBucket", async () => {
    const all = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const res = await s3.send(new DeleteObjectsCommand({
      Bucket: bucket,
      Delete: { Objects: all.Contents.map((o) => ({ Key: o.Key })) } }));
    assert.equal((res.Errors || []).length, 0, JSON.stringify(res.Errors));
    assert.equal(res.Deleted.length, 4);
    const empty = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    assert.equal(empty.KeyCount, 0);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    await assert.rejects(s3.send(new HeadBucketCommand({ Bucket: bucket })),
                         (err) => err.$metadata?.httpStatusCode === 404);
  });
});
