"""s3cmd (Debian's 2.3) against a real vlake server, path-style, SigV4, plain HTTP.

s3cmd checks what it downloads against the ETag (the MD5 of single-part uploads) or, for
multipart objects, against the MD5 it stored in x-amz-meta-s3cmd-attrs; a mismatch is only a
WARNING on stderr, so the tests fail on any WARNING/ERROR in its output."""

import os
import re
import shutil
import tempfile
import unittest

from client_util import (MIB, ODD_NAME, clean_env, file_digest, make_tree, md5_of, run, stop_server_and_check_log, tree_digests, write_random, write_s3cmd_config)
from vlake_server import USERS, VlakeServer, boto3_client, needs

S3CMD = shutil.which("s3cmd")


@needs(S3CMD, "s3cmd is not installed (scripts/install-deps.sh --test)")
class S3cmdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vlake-s3cmd-")
        cls.server = VlakeServer().start()
        cls.config = write_s3cmd_config(os.path.join(cls.tmp, "s3cfg"), cls.server.port,
                                        USERS[0]["access_key"], USERS[0]["secret_key"])
        home = os.path.join(cls.tmp, "home")
        os.makedirs(home)
        cls.env = clean_env(home)
        cls.s3 = boto3_client(cls.server)  # to look at what s3cmd did
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        stop_server_and_check_log(cls.server, cls.tmp)

    # What s3cmd says on purpose: rb --recursive on a non-empty bucket.
    EXPECTED_WARNINGS = ("WARNING: Bucket is not empty. Removing all the objects from it first.",)

    def s3cmd(self, *args, check=True):
        proc = run([S3CMD, "-c", self.config] + list(args), self.env, check=check, timeout=180)
        if check:
            both = proc.stdout + proc.stderr
            for line in both.splitlines():
                if not line.startswith(self.EXPECTED_WARNINGS):
                    self.assertNotRegex(line, r"WARNING|ERROR", both)
        return proc

    def new_bucket(self):
        type(self).counter += 1
        name = f"s3cmd-{type(self).counter}-{os.getpid()}"
        out = self.s3cmd("mb", f"s3://{name}").stdout
        self.assertIn(f"Bucket 's3://{name}/' created", out)
        return name

    def workdir(self):
        d = os.path.join(self.tmp, self._testMethodName)
        os.makedirs(d)
        return d

    def test_small_put_get_info(self):
        b = self.new_bucket()
        d = self.workdir()
        src = os.path.join(d, "small.txt")
        with open(src, "wb") as f:
            f.write(b"hello from s3cmd\n" * 100)
        out = self.s3cmd("put", src, f"s3://{b}/dir/small.txt").stdout
        self.assertIn(f"-> 's3://{b}/dir/small.txt'", out)
        head = self.s3.head_object(Bucket=b, Key="dir/small.txt")
        self.assertEqual(head["ETag"], f'"{md5_of(src)}"')
        self.assertEqual(head["ContentType"], "text/plain")
        self.assertIn("s3cmd-attrs", head["Metadata"])

        back = os.path.join(d, "back.txt")
        out = self.s3cmd("get", f"s3://{b}/dir/small.txt", back).stdout
        self.assertIn(f"download: 's3://{b}/dir/small.txt' -> '{back}'", out)
        self.assertEqual(file_digest(back), file_digest(src))
        # Downloading again over the existing file needs --force; --skip-existing skips it.
        self.s3cmd("get", "--force", f"s3://{b}/dir/small.txt", back)
        self.assertEqual(file_digest(back), file_digest(src))

        info = self.s3cmd("info", f"s3://{b}/dir/small.txt").stdout
        self.assertRegex(info, rf"File size:\s+{os.path.getsize(src)}\n")
        self.assertRegex(info, rf"MD5 sum:\s+{md5_of(src)}\n")
        self.assertRegex(info, r"MIME type:\s+text/plain")
        self.assertRegex(info, r"Last mod:\s+\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT")
        binfo = self.s3cmd("info", f"s3://{b}").stdout
        self.assertRegex(binfo, r"Location:\s+us-east-1")
        self.assertRegex(binfo, r"ACL:\s+Alice: FULL_CONTROL")

        # Server-side copy, move, and modify (a CopyObject with metadata directive REPLACE).
        out = self.s3cmd("cp", f"s3://{b}/dir/small.txt", f"s3://{b}/copy.txt").stdout
        self.assertIn(f"remote copy: 's3://{b}/dir/small.txt' -> 's3://{b}/copy.txt'", out)
        self.s3cmd("mv", f"s3://{b}/copy.txt", f"s3://{b}/moved.txt")
        self.s3cmd("modify", "--add-header=Cache-Control:max-age=9", f"s3://{b}/moved.txt")
        moved = self.s3.head_object(Bucket=b, Key="moved.txt")
        self.assertEqual(moved["CacheControl"], "max-age=9")
        self.assertEqual(moved["ETag"], head["ETag"])
        self.assertEqual(moved["ContentType"], "text/plain")
        self.assertEqual(sorted(o["Key"] for o in self.s3.list_objects_v2(Bucket=b)["Contents"]),
                         ["dir/small.txt", "moved.txt"])

        self.s3cmd("del", f"s3://{b}/dir/small.txt", f"s3://{b}/moved.txt")
        self.assertEqual(self.s3.list_objects_v2(Bucket=b)["KeyCount"], 0)
        self.s3cmd("rb", f"s3://{b}")

    def test_multipart_put_get(self):
        b = self.new_bucket()
        d = self.workdir()
        src = os.path.join(d, "big.bin")
        size = 20 * MIB + 12345
        write_random(src, size)
        # 15 MiB parts by default: two parts.
        self.s3cmd("put", src, f"s3://{b}/big.bin")
        head = self.s3.head_object(Bucket=b, Key="big.bin")
        self.assertEqual(head["ContentLength"], size)
        self.assertRegex(head["ETag"], r'^"[0-9a-f]{32}-2"$')
        # An explicit, smaller chunk size: 5 parts.
        self.s3cmd("put", "--multipart-chunk-size-mb=5", src, f"s3://{b}/big5.bin")
        self.assertRegex(self.s3.head_object(Bucket=b, Key="big5.bin")["ETag"],
                         r'^"[0-9a-f]{32}-5"$')
        for key in ["big.bin", "big5.bin"]:
            back = os.path.join(d, key + ".back")
            self.s3cmd("get", f"s3://{b}/{key}", back)
            self.assertEqual(file_digest(back), file_digest(src))
        info = self.s3cmd("info", f"s3://{b}/big.bin").stdout
        self.assertRegex(info, rf"File size:\s+{size}\n")
        self.assertRegex(info, rf"MD5 sum:\s+{md5_of(src)}\n")  # from s3cmd-attrs
        self.s3cmd("del", f"s3://{b}/big.bin", f"s3://{b}/big5.bin")
        self.s3cmd("rb", f"s3://{b}")

    def test_ls_la_del_rb(self):
        b1, b2 = self.new_bucket(), self.new_bucket()
        d = self.workdir()
        names = ["a.txt", "sub/b.txt", "sub/deeper/c.txt", ODD_NAME]
        for i, name in enumerate(names):
            p = os.path.join(d, f"f{i}")
            with open(p, "wb") as f:
                f.write(b"x" * (10 + i))
            self.s3cmd("put", p, f"s3://{b1}/{name}")
        self.s3cmd("put", os.path.join(d, "f0"), f"s3://{b2}/only.txt")

        buckets = self.s3cmd("ls").stdout
        self.assertRegex(buckets, rf"(?m)^\d{{4}}-\d\d-\d\d \d\d:\d\d\s+s3://{b1}$")
        self.assertRegex(buckets, rf"(?m)^\d{{4}}-\d\d-\d\d \d\d:\d\d\s+s3://{b2}$")

        top = self.s3cmd("ls", f"s3://{b1}").stdout.splitlines()
        self.assertEqual(len(top), 3, top)
        self.assertRegex(top[0], rf"^\s+DIR\s+s3://{b1}/sub/$")
        self.assertRegex(top[1], rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d\s+10\s+s3://{b1}/a.txt$")
        self.assertRegex(top[2], rf"\s+13\s+s3://{b1}/{re.escape(ODD_NAME)}$")
        rec = self.s3cmd("ls", "-r", f"s3://{b1}").stdout.splitlines()
        self.assertEqual([ln.split("s3://", 1)[1] for ln in rec],
                         [f"{b1}/{n}" for n in sorted(names)])

        la = self.s3cmd("la").stdout  # every bucket, one level
        self.assertRegex(la, rf"(?m)^\s+DIR\s+s3://{b1}/sub/$")
        for n in ["a.txt", ODD_NAME]:
            self.assertIn(f"s3://{b1}/{n}\n", la)
        self.assertNotIn(f"s3://{b1}/sub/b.txt", la)
        self.assertIn(f"s3://{b2}/only.txt\n", la)
        la_r = self.s3cmd("la", "-r").stdout
        for n in names:
            self.assertIn(f"s3://{b1}/{n}\n", la_r)

        # du: total bytes and objects.
        du = self.s3cmd("du", f"s3://{b1}").stdout
        self.assertRegex(du, rf"^\s*{10 + 11 + 12 + 13}\s+4 objects s3://{b1}/")

        # rb of a non-empty bucket fails (BucketNotEmpty) and leaves it.
        busy = self.s3cmd("rb", f"s3://{b2}", check=False)
        self.assertNotEqual(busy.returncode, 0)
        self.assertIn("BucketNotEmpty", busy.stdout + busy.stderr)

        out = self.s3cmd("del", f"s3://{b1}/{ODD_NAME}").stdout
        self.assertIn(f"delete: 's3://{b1}/{ODD_NAME}'", out)
        out = self.s3cmd("del", "--recursive", "--force", f"s3://{b1}/sub/").stdout
        self.assertIn(f"delete: 's3://{b1}/sub/deeper/c.txt'", out)
        self.assertEqual([o["Key"] for o in self.s3.list_objects_v2(Bucket=b1)["Contents"]],
                         ["a.txt"])
        # A missing object: s3cmd reports it and exits non-zero.
        missing = self.s3cmd("info", f"s3://{b1}/nope", check=False)
        self.assertNotEqual(missing.returncode, 0)

        self.s3cmd("del", f"s3://{b1}/a.txt")
        out = self.s3cmd("rb", f"s3://{b1}").stdout
        self.assertIn(f"Bucket 's3://{b1}/' removed", out)
        # rb --recursive --force empties and removes in one go.
        self.s3cmd("rb", "--recursive", "--force", f"s3://{b2}")
        names_now = [x["Name"] for x in self.s3.list_buckets()["Buckets"]]
        self.assertNotIn(b1, names_now)
        self.assertNotIn(b2, names_now)

    def test_sync_up_and_down(self):
        b = self.new_bucket()
        d = self.workdir()
        src, down = os.path.join(d, "src"), os.path.join(d, "down")
        files = make_tree(src)
        self.s3cmd("sync", src + "/", f"s3://{b}/t/")
        keys = sorted(o["Key"] for o in
                      self.s3.list_objects_v2(Bucket=b, MaxKeys=1000)["Contents"])
        self.assertEqual(keys, [f"t/{f}" for f in files])
        os.makedirs(down)
        self.s3cmd("sync", f"s3://{b}/t/", down + "/")
        self.assertEqual(tree_digests(down), tree_digests(src))
        self.s3cmd("rb", "--recursive", "--force", f"s3://{b}")


if __name__ == "__main__":
    unittest.main()
