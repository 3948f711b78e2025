"""The AWS CLI, both generations, against a real vlake server: v1 (the test Python's awscli
package, `python -m awscli`; botocore with CRC32 checksums and aws-chunked trailers by default)
and v2 (Debian's /usr/bin/aws, 2.9: SigV4 with signed payloads, no default checksums).

Each CLI runs with a temporary HOME and AWS config so nothing of this machine's setup is used.
Covered: s3 mb / cp (100 MiB multipart up and down, server-side multipart copy, mv, stdin and
stdout streams, metadata) / sync (nested tree, odd names, --delete, down into an empty folder) /
ls / presign / rm --recursive / rb, s3api head-object ETag and ranged get-object. Transfers that
stall until the read timeout (hidden by the CLI's retries) fail the test."""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.request

from client_util import (MIB, ODD_NAME, clean_env, file_digest, make_tree, md5_of, run, stop_server_and_check_log, tree_digests, write_random)
from vlake_server import USERS, VlakeServer, missing

BIG_SIZE = 100 * MIB
# Small transfers take about a second. The CLIs run with a 25 s read timeout (default 60 s), so
# a stalled request shows as a transfer slower than this.
READ_TIMEOUT_S = 25
STALL_LIMIT_S = 20


class AwsCliMixin:
    CLI = None          # command prefix (list)
    VERSION_PREFIX = None
    LABEL = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"vlake-awscli{cls.LABEL}-")
        home = os.path.join(cls.tmp, "home")
        os.makedirs(home)
        config = os.path.join(home, "aws-config")
        with open(config, "w") as f:
            # v1's `s3 presign` signs with SigV2 unless told otherwise; vlake is SigV4 only.
            f.write("[default]\nregion = us-east-1\ns3 =\n    signature_version = s3v4\n")
            # One transfer thread: every request of a command on one kept-alive connection.
            f.write("[profile serial]\nregion = us-east-1\n"
                    f"aws_access_key_id = {USERS[0]['access_key']}\n"
                    f"aws_secret_access_key = {USERS[0]['secret_key']}\n"
                    "s3 =\n    signature_version = s3v4\n    max_concurrent_requests = 1\n")
        cls.env = clean_env(home, {
            "AWS_ACCESS_KEY_ID": USERS[0]["access_key"],
            "AWS_SECRET_ACCESS_KEY": USERS[0]["secret_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": config,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
        })
        probe = run(cls.CLI + ["--version"], cls.env, check=False, timeout=60)
        version = (probe.stdout + probe.stderr).strip()
        if probe.returncode != 0 or not version.startswith(cls.VERSION_PREFIX):
            shutil.rmtree(cls.tmp, ignore_errors=True)
            missing(f"{' '.join(cls.CLI)} is not a working {cls.VERSION_PREFIX}"
                    f" CLI: rc={probe.returncode} {version[:300]}")
        cls.version = version
        cls.server = VlakeServer().start()
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        stop_server_and_check_log(cls.server, cls.tmp)

    # ---- helpers ----

    def aws(self, *args, check=True, timeout=300):
        return run(self.CLI + ["--endpoint-url", self.server.endpoint,
                               "--cli-read-timeout", str(READ_TIMEOUT_S)] + list(args), self.env,
                   check=check, timeout=timeout)

    def transfer(self, *args, limit_s=STALL_LIMIT_S):
        """s3 cp/sync/rm: errors only, and then there must be none. A stall (a request that
        hangs until the CLI's read timeout, then is retried) is a failure even though the
        CLI hides the retry."""
        t0 = time.time()
        proc = self.aws("s3", args[0], "--only-show-errors", *args[1:])
        took = time.time() - t0
        self.assertEqual(proc.stderr.strip(), "", proc.stderr)
        self.assertLess(took, limit_s, f"aws s3 {' '.join(args)} took {took:.0f}s: a request "
                        "stalled until the read timeout and was retried (run with --debug)")
        return proc

    def new_bucket(self):
        type(self).counter += 1
        name = f"cli{self.LABEL}-{type(self).counter}-{os.getpid()}"
        out = self.aws("s3", "mb", f"s3://{name}").stdout
        self.assertIn(f"make_bucket: {name}", out)
        return name

    def keys(self, bucket, prefix=""):
        out = self.aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix,
                       "--output", "json").stdout
        data = json.loads(out) if out.strip() else {}
        return sorted(o["Key"] for o in data.get("Contents", []))

    def head(self, bucket, key):
        return json.loads(self.aws("s3api", "head-object", "--bucket", bucket, "--key",
                                   key, "--output", "json").stdout)

    def workdir(self, name):
        d = os.path.join(self.tmp, f"{name}-{self._testMethodName}")
        os.makedirs(d)
        return d

    # ---- tests ----

    def test_cp_100mib_multipart_roundtrip(self):
        b = self.new_bucket()
        d = self.workdir("cp")
        src, back = os.path.join(d, "big.bin"), os.path.join(d, "big.back")
        write_random(src, BIG_SIZE)
        t0 = time.time()
        self.transfer("cp", src, f"s3://{b}/dir/big.bin", limit_s=120)
        up_s = time.time() - t0
        head = self.head(b, "dir/big.bin")
        self.assertEqual(head["ContentLength"], BIG_SIZE)
        # 8 MiB parts (the CLI default): a multipart ETag "<md5 of part md5s>-13".
        self.assertRegex(head["ETag"], r'^"[0-9a-f]{32}-13"$')
        t0 = time.time()
        self.transfer("cp", f"s3://{b}/dir/big.bin", back, limit_s=120)
        down_s = time.time() - t0
        self.assertEqual(os.path.getsize(back), BIG_SIZE)
        self.assertEqual(file_digest(back), file_digest(src))
        print(f"\n  [{self.LABEL}] 100 MiB up {up_s:.1f}s down {down_s:.1f}s", file=sys.stderr)
        # Server-side: a multipart copy (UploadPartCopy), then a move of the copy.
        self.transfer("cp", f"s3://{b}/dir/big.bin", f"s3://{b}/copy/big.bin", limit_s=120)
        self.assertRegex(self.head(b, "copy/big.bin")["ETag"], r'^"[0-9a-f]{32}-13"$')
        self.transfer("mv", f"s3://{b}/copy/big.bin", f"s3://{b}/moved/big.bin", limit_s=120)
        self.assertEqual(self.keys(b), ["dir/big.bin", "moved/big.bin"])
        os.remove(back)
        self.transfer("cp", f"s3://{b}/moved/big.bin", back, limit_s=120)
        self.assertEqual(file_digest(back), file_digest(src))
        self.transfer("rm", "--recursive", f"s3://{b}")
        self.aws("s3", "rb", f"s3://{b}")

    def test_sync_tree(self):
        b = self.new_bucket()
        d = self.workdir("sync")
        src, down = os.path.join(d, "src"), os.path.join(d, "down")
        os.makedirs(down)
        files = make_tree(src)
        self.assertGreaterEqual(len(files), 30)
        self.transfer("sync", src, f"s3://{b}/tree")
        self.assertEqual(self.keys(b), [f"tree/{f}" for f in files])
        # A second sync with nothing changed uploads nothing.
        again = self.aws("s3", "sync", "--dryrun", src, f"s3://{b}/tree")
        self.assertEqual(again.stdout.strip(), "", again.stdout)

        # Modify one file (size changes, so sync must see it), delete one, sync with --delete.
        changed = f"odd/{ODD_NAME}"
        with open(os.path.join(src, *changed.split("/")), "ab") as f:
            f.write("more ünïcödé\n".encode())
        gone = "a/b/c/deep3.bin"
        os.remove(os.path.join(src, *gone.split("/")))
        out = self.aws("s3", "sync", "--no-progress", "--delete", src,
                       f"s3://{b}/tree").stdout
        self.assertEqual(sorted(ln.split(":")[0] for ln in out.splitlines() if ln.strip()),
                         ["delete", "upload"], out)
        self.assertIn(f"delete: s3://{b}/tree/{gone}", out)
        self.assertIn(f" to s3://{b}/tree/{changed}\n", out)
        expected = sorted(f for f in files if f != gone)
        self.assertEqual(self.keys(b), [f"tree/{f}" for f in expected])

        # Down into an empty folder: the same tree, byte for byte.
        self.transfer("sync", f"s3://{b}/tree", down)
        self.assertEqual(tree_digests(down), tree_digests(src))
        self.transfer("rm", "--recursive", f"s3://{b}")
        self.aws("s3", "rb", f"s3://{b}")

    def test_ls(self):
        b = self.new_bucket()
        d = self.workdir("ls")
        p = os.path.join(d, "one.txt")
        with open(p, "wb") as f:
            f.write(b"x" * 1234)
        self.transfer("cp", p, f"s3://{b}/one.txt")
        self.transfer("cp", p, f"s3://{b}/sub/dir/two.txt")
        self.transfer("cp", p, f"s3://{b}/sub/{ODD_NAME}")
        buckets = self.aws("s3", "ls").stdout
        self.assertRegex(buckets, rf"(?m)^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {b}$")
        top = self.aws("s3", "ls", f"s3://{b}/").stdout.splitlines()
        self.assertEqual(len(top), 2, top)
        self.assertRegex(top[0], r"^\s+PRE sub/$")
        self.assertRegex(top[1], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+1234 one.txt$")
        sub = self.aws("s3", "ls", f"s3://{b}/sub/").stdout.splitlines()
        self.assertEqual(len(sub), 2, sub)
        self.assertRegex(sub[0], r"^\s+PRE dir/$")
        self.assertTrue(sub[1].endswith(f" 1234 {ODD_NAME}"), sub)
        rec = self.aws("s3", "ls", "--recursive", f"s3://{b}").stdout.splitlines()
        self.assertEqual([ln.split(None, 3)[3] for ln in rec],
                         ["one.txt", "sub/dir/two.txt", f"sub/{ODD_NAME}"])
        self.assertEqual({ln.split(None, 3)[2] for ln in rec}, {"1234"})
        # A bucket that does not exist: the CLI fails with NoSuchBucket.
        missing = self.aws("s3", "ls", f"s3://{b}-nope", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("NoSuchBucket", missing.stderr)
        self.transfer("rm", "--recursive", f"s3://{b}")
        self.aws("s3", "rb", f"s3://{b}")

    def test_head_object_etag_is_md5(self):
        b = self.new_bucket()
        d = self.workdir("etag")
        p = os.path.join(d, "small.bin")
        write_random(p, 300 * 1024 + 17)
        self.transfer("cp", p, f"s3://{b}/small.bin")
        head = self.head(b, "small.bin")
        self.assertEqual(head["ETag"], f'"{md5_of(p)}"')
        self.assertEqual(head["ContentLength"], 300 * 1024 + 17)
        # s3api put-object too (v1 sends a CRC32 checksum with it).
        put = json.loads(self.aws("s3api", "put-object", "--bucket", b, "--key", "api.bin",
                                  "--body", p, "--output", "json").stdout)
        self.assertEqual(put["ETag"], f'"{md5_of(p)}"')
        self.assertEqual(self.head(b, "api.bin")["ETag"], f'"{md5_of(p)}"')
        self.transfer("rm", "--recursive", f"s3://{b}")
        self.aws("s3", "rb", f"s3://{b}")

    def test_stream_presign_metadata(self):
        b = self.new_bucket()
        d = self.workdir("stream")
        data = os.urandom(9 * MIB + 99)  # over the 8 MiB threshold: multipart of unknown size
        run(self.CLI + ["--endpoint-url", self.server.endpoint, "s3", "cp", "--only-show-errors",
                        "-", f"s3://{b}/stdin.bin"], self.env, timeout=120, input=data,
            binary=True)
        self.assertEqual(self.head(b, "stdin.bin")["ContentLength"], len(data))
        out = run(self.CLI + ["--endpoint-url", self.server.endpoint, "s3", "cp",
                              f"s3://{b}/stdin.bin", "-"], self.env, timeout=120,
                  binary=True).stdout
        self.assertEqual(out, data)

        # A URL from `s3 presign`, fetched without credentials.
        url = self.aws("s3", "presign", f"s3://{b}/stdin.bin", "--expires-in", "300").stdout
        self.assertIn("X-Amz-Signature=", url)
        with urllib.request.urlopen(url.strip(), timeout=60) as resp:
            self.assertEqual(resp.read(), data)

        # Metadata, Content-Type and Cache-Control set by cp come back from head-object.
        p = os.path.join(d, "meta.txt")
        with open(p, "wb") as f:
            f.write(b"meta\n")
        self.transfer("cp", p, f"s3://{b}/meta.txt", "--metadata", "color=blue,Shape=round",
                      "--content-type", "application/x-vlake", "--cache-control", "max-age=5")
        head = self.head(b, "meta.txt")
        self.assertEqual(head["Metadata"], {"color": "blue", "shape": "round"})
        self.assertEqual(head["ContentType"], "application/x-vlake")
        self.assertEqual(head["CacheControl"], "max-age=5")
        # A single-part server-side copy keeps them (CopyObject, metadata directive COPY).
        self.transfer("cp", f"s3://{b}/meta.txt", f"s3://{b}/meta-copy.txt")
        copy = self.head(b, "meta-copy.txt")
        self.assertEqual(copy["Metadata"], head["Metadata"])
        self.assertEqual(copy["ContentType"], head["ContentType"])
        self.assertEqual(copy["ETag"], head["ETag"])
        # Ranged get through s3api.
        rng = os.path.join(d, "range.out")
        got = json.loads(self.aws("s3api", "get-object", "--bucket", b, "--key", "stdin.bin",
                                  "--range", "bytes=100-199", rng, "--output", "json").stdout)
        self.assertEqual(got["ContentRange"], f"bytes 100-199/{len(data)}")
        with open(rng, "rb") as f:
            self.assertEqual(f.read(), data[100:200])
        self.aws("s3", "rb", "--force", f"s3://{b}")

    def test_empty_file_then_more_on_one_connection(self):
        # The CLIs send Expect: 100-continue on every PUT, empty ones too. If the server answers
        # an empty PUT without a 100 first, botocore keeps that "early" status line for the
        # connection and misreads the next PUT's response there (boto/botocore#3755): a stall
        # until the read timeout, then a retry. With one thread this is deterministic.
        b = self.new_bucket()
        d = self.workdir("empty")
        open(os.path.join(d, "a-empty.txt"), "wb").close()
        for i in range(3):
            with open(os.path.join(d, f"b{i}.txt"), "wb") as f:
                f.write(b"after the empty one %d\n" % i)
        self.transfer("sync", "--profile", "serial", d, f"s3://{b}")
        self.assertEqual(self.keys(b), ["a-empty.txt", "b0.txt", "b1.txt", "b2.txt"])
        self.assertEqual(self.head(b, "a-empty.txt")["ContentLength"], 0)
        self.aws("s3", "rb", "--force", f"s3://{b}")

    def test_rm_recursive_and_rb(self):
        b = self.new_bucket()
        d = self.workdir("rm")
        files = make_tree(os.path.join(d, "src"))
        self.transfer("sync", os.path.join(d, "src"), f"s3://{b}/")
        self.assertEqual(self.keys(b), files)
        # rb of a non-empty bucket fails with BucketNotEmpty.
        busy = self.aws("s3", "rb", f"s3://{b}", check=False)
        self.assertNotEqual(busy.returncode, 0)
        self.assertIn("BucketNotEmpty", busy.stderr)
        # rm --recursive of a prefix, then of everything.
        self.transfer("rm", "--recursive", f"s3://{b}/a/")
        self.assertEqual(self.keys(b), [f for f in files if not f.startswith("a/")])
        self.transfer("rm", "--recursive", f"s3://{b}")
        self.assertEqual(self.keys(b), [])
        out = self.aws("s3", "rb", f"s3://{b}").stdout
        self.assertIn(f"remove_bucket: {b}", out)
        self.assertNotRegex(self.aws("s3", "ls").stdout, rf"(?m) {b}$")
        # And rb --force removes a non-empty bucket in one go.
        b2 = self.new_bucket()
        self.transfer("cp", os.path.join(d, "src", "top1.txt"), f"s3://{b2}/x/y.txt")
        self.aws("s3", "rb", "--force", f"s3://{b2}")
        gone = self.aws("s3api", "head-bucket", "--bucket", b2, check=False)
        self.assertNotEqual(gone.returncode, 0)


class AwsCliV1Test(AwsCliMixin, unittest.TestCase):
    CLI = [sys.executable, "-m", "awscli"]
    VERSION_PREFIX = "aws-cli/1."
    LABEL = "1"


class AwsCliV2Test(AwsCliMixin, unittest.TestCase):
    CLI = ["/usr/bin/aws"]
    VERSION_PREFIX = "aws-cli/2."
    LABEL = "2"


if __name__ == "__main__":
    unittest.main()
