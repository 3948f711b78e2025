"""The AWS CLI, both generations, against a real vlake server: v1 (the test Python's awscli
package, `python -m awscli`; botocore with CRC32 checksums and aws-chunked trailers by default)
and v2 (Debian's /usr/bin/aws, 2.9: SigV4 with signed payloads, no default checksums).

Each CLI runs with a temporary HOME and AWS config so nothing of this machine's setup is used.
Covered: s3 mb / cp (100 MiB multipart up and down) / sync (nested tree, odd names, --delete,
down into an empty folder) / ls / rm --recursive / rb, s3api head-object ETag."""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest

from client_util import (MIB, ODD_NAME, clean_env, file_digest, make_tree, md5_of, run,
                         tree_digests, write_random)
from vlake_server import USERS, VlakeServer

BIG_SIZE = 100 * MIB


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
            f.write("[default]\nregion = us-east-1\n")
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
            raise unittest.SkipTest(f"{' '.join(cls.CLI)} is not a working {cls.VERSION_PREFIX}"
                                    f" CLI: rc={probe.returncode} {version[:300]}")
        cls.version = version
        cls.server = VlakeServer().start()
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----

    def aws(self, *args, check=True, timeout=300):
        return run(self.CLI + ["--endpoint-url", self.server.endpoint] + list(args), self.env,
                   check=check, timeout=timeout)

    def transfer(self, *args):
        """s3 cp/sync/rm: errors only, and then there must be none."""
        proc = self.aws("s3", args[0], "--only-show-errors", *args[1:])
        self.assertEqual(proc.stderr.strip(), "", proc.stderr)
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
        self.transfer("cp", src, f"s3://{b}/dir/big.bin")
        up_s = time.time() - t0
        head = self.head(b, "dir/big.bin")
        self.assertEqual(head["ContentLength"], BIG_SIZE)
        # 8 MiB parts (the CLI default): a multipart ETag "<md5 of part md5s>-13".
        self.assertRegex(head["ETag"], r'^"[0-9a-f]{32}-13"$')
        t0 = time.time()
        self.transfer("cp", f"s3://{b}/dir/big.bin", back)
        down_s = time.time() - t0
        self.assertEqual(os.path.getsize(back), BIG_SIZE)
        self.assertEqual(file_digest(back), file_digest(src))
        print(f"\n  [{self.LABEL}] 100 MiB up {up_s:.1f}s down {down_s:.1f}s", file=sys.stderr)
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
        out = self.aws("s3", "sync", "--delete", src, f"s3://{b}/tree").stdout
        self.assertIn("upload: ", out)
        self.assertIn(f"delete: s3://{b}/tree/{gone}", out)
        self.assertEqual(len([ln for ln in out.splitlines() if ln.strip()]), 2, out)
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
                         ["one.txt", f"sub/{ODD_NAME}", "sub/dir/two.txt"])
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
