"""rclone (Debian's 1.60, the Go AWS SDK v1) against a real vlake server, configured entirely by
environment variables (remote "vl:"), path-style, plain HTTP.

Covered: mkdir, copy of a tree with a 30 MiB file (multipart: --s3-upload-cutoff 10M
--s3-chunk-size 5M), check (MD5s), copy back down, lsf, delete, purge."""

import os
import shutil
import tempfile
import unittest

from client_util import (MIB, clean_env, make_tree, md5_of, run, stop_server_and_check_log, tree_digests, write_random)
from vlake_server import USERS, VlakeServer, boto3_client, needs

RCLONE = shutil.which("rclone")
BIG = 30 * MIB + 333


@needs(RCLONE, "rclone is not installed (scripts/install-deps.sh --test)")
class RcloneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vlake-rclone-")
        cls.server = VlakeServer().start()
        home = os.path.join(cls.tmp, "home")
        os.makedirs(home)
        # clean_env drops AWS_CA_BUNDLE (rclone would fail on it) and any RCLONE_ settings.
        cls.env = clean_env(home, {
            "RCLONE_CONFIG_VL_TYPE": "s3",
            "RCLONE_CONFIG_VL_PROVIDER": "Other",
            "RCLONE_CONFIG_VL_ENDPOINT": cls.server.endpoint,
            "RCLONE_CONFIG_VL_ACCESS_KEY_ID": USERS[0]["access_key"],
            "RCLONE_CONFIG_VL_SECRET_ACCESS_KEY": USERS[0]["secret_key"],
            "RCLONE_CONFIG_VL_REGION": "us-east-1",
            "RCLONE_CONFIG_VL_FORCE_PATH_STYLE": "true",
        })
        cls.s3 = boto3_client(cls.server)
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        stop_server_and_check_log(cls.server, cls.tmp)

    def rclone(self, *args, check=True):
        proc = run([RCLONE, "--config", os.devnull, "--retries", "1",
                    "--low-level-retries", "1"] + list(args), self.env, check=check,
                   timeout=300)
        if check:
            self.assertNotIn("ERROR", proc.stderr, proc.stderr)
        return proc

    def new_bucket(self):
        type(self).counter += 1
        name = f"rclone-{type(self).counter}-{os.getpid()}"
        self.rclone("mkdir", f"vl:{name}")
        return name

    def workdir(self):
        d = os.path.join(self.tmp, self._testMethodName)
        os.makedirs(d)
        return d

    def lsf(self, path):
        return sorted(self.rclone("lsf", "-R", "--files-only", path).stdout.splitlines())

    def test_copy_check_lsf_delete_purge(self):
        b = self.new_bucket()
        self.assertIn(f"{b}/", self.rclone("lsf", "vl:").stdout.splitlines())
        d = self.workdir()
        src, down = os.path.join(d, "src"), os.path.join(d, "down")
        files = make_tree(src)
        write_random(os.path.join(src, "big", "thirty.bin"), BIG)
        files = sorted(files + ["big/thirty.bin"])

        self.rclone("copy", "--s3-upload-cutoff", "10M", "--s3-chunk-size", "5M",
                    "--transfers", "4", src, f"vl:{b}/tree")
        self.assertEqual(self.lsf(f"vl:{b}/tree"), files)
        head = self.s3.head_object(Bucket=b, Key="tree/big/thirty.bin")
        self.assertEqual(head["ContentLength"], BIG)
        self.assertRegex(head["ETag"], r'^"[0-9a-f]{32}-7"$')  # ceil(30 MiB / 5 MiB) parts

        # check: sizes and MD5s (for the multipart object, the MD5 rclone stored in metadata).
        out = self.rclone("check", src, f"vl:{b}/tree")
        self.assertIn("0 differences found", out.stderr)
        self.assertIn(f"{len(files)} matching files", out.stderr)
        # --download compares the bytes themselves.
        out = self.rclone("check", "--download", src, f"vl:{b}/tree")
        self.assertIn("0 differences found", out.stderr)
        # md5sum: the server's ETag for single-part objects.
        sums = {}
        for line in self.rclone("md5sum", f"vl:{b}/tree/odd").stdout.splitlines():
            digest, name = line.split("  ", 1)
            sums[name] = digest
        self.assertEqual(sums, {n: md5_of(os.path.join(src, "odd", n))
                                for n in os.listdir(os.path.join(src, "odd"))})

        # Down again into an empty folder.
        self.rclone("copy", f"vl:{b}/tree", down)
        self.assertEqual(tree_digests(down), tree_digests(src))

        # A changed file makes check fail.
        with open(os.path.join(src, "top0.txt"), "ab") as f:
            f.write(b"changed\n")
        bad = self.rclone("check", src, f"vl:{b}/tree", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("1 differences found", bad.stderr)

        # delete: files only (here those under a/), leaves the rest.
        self.rclone("delete", f"vl:{b}/tree/a")
        self.assertEqual(self.lsf(f"vl:{b}/tree"), [f for f in files if not f.startswith("a/")])
        self.rclone("delete", "--include", "*.txt", f"vl:{b}/tree")
        self.assertEqual(self.lsf(f"vl:{b}/tree"), ["big/thirty.bin"])

        # purge: everything and the bucket.
        self.rclone("purge", f"vl:{b}")
        self.assertNotIn(f"{b}/", self.rclone("lsf", "vl:").stdout.splitlines())
        self.assertNotIn(b, [x["Name"] for x in self.s3.list_buckets()["Buckets"]])

    def test_sync_and_moveto(self):
        b = self.new_bucket()
        d = self.workdir()
        src = os.path.join(d, "src")
        files = make_tree(src)
        self.rclone("sync", src, f"vl:{b}")
        self.assertEqual(self.lsf(f"vl:{b}"), files)
        os.remove(os.path.join(src, "top5.txt"))
        self.rclone("sync", src, f"vl:{b}")
        self.assertEqual(self.lsf(f"vl:{b}"), [f for f in files if f != "top5.txt"])
        # Server-side copy + delete.
        self.rclone("moveto", f"vl:{b}/top1.txt", f"vl:{b}/moved/one.txt")
        self.assertEqual(self.rclone("cat", f"vl:{b}/moved/one.txt").stdout, "top level 1\n")
        self.assertNotIn("top1.txt", self.lsf(f"vl:{b}"))
        # size and about-like listing.
        size = self.rclone("size", f"vl:{b}").stdout
        self.assertIn(f"Total objects: {len(files) - 1}", size)
        self.rclone("purge", f"vl:{b}")


if __name__ == "__main__":
    unittest.main()
