"""curl against a real vlake server: presigned GET/PUT URLs made by boto3 (query-string SigV4),
expired and tampered URLs, and curl's own header signing (--aws-sigv4, curl >= 7.75)."""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from client_util import (MIB, ODD_NAME, clean_env, file_digest, run, stop_server_and_check_log, write_random)
from vlake_server import USERS, VlakeServer, boto3_client, needs

CURL = shutil.which("curl")


def curl_supports_aws_sigv4():
    if not CURL:
        return False
    out = subprocess.run([CURL, "--help", "all"], capture_output=True, text=True).stdout
    return "--aws-sigv4" in out


@needs(CURL, "curl is not installed")
class CurlPresignedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vlake-curl-")
        cls.server = VlakeServer().start()
        cls.env = clean_env(os.path.join(cls.tmp))
        cls.s3 = boto3_client(cls.server)
        cls.bucket = f"curl-{os.getpid()}"
        cls.s3.create_bucket(Bucket=cls.bucket)

    @classmethod
    def tearDownClass(cls):
        stop_server_and_check_log(cls.server, cls.tmp)

    def curl(self, *args, check=True):
        """curl -sS with a time limit; returns the CompletedProcess."""
        return run([CURL, "-sS", "--max-time", "120"] + list(args), self.env, check=check)

    def status_and_body(self, *args):
        """(HTTP status, response body as text) of a curl run that may fail."""
        out = os.path.join(self.tmp, "body.out")
        proc = self.curl("-o", out, "-w", "%{http_code}", *args)
        with open(out, "rb") as f:
            body = f.read()
        os.remove(out)
        return int(proc.stdout), body.decode("utf-8", "replace")

    def presign(self, method, key, expires=300, **params):
        return self.s3.generate_presigned_url(
            method, Params={"Bucket": self.bucket, "Key": key, **params}, ExpiresIn=expires)

    def test_presigned_put_then_get(self):
        src = os.path.join(self.tmp, "up.bin")
        write_random(src, 3 * MIB + 5)
        for key in ["plain.bin", f"dir/{ODD_NAME}", "sp ace/a+b=c&d.bin"]:
            with self.subTest(key=key):
                put = self.presign("put_object", key)
                self.curl("-f", "-X", "PUT", "--upload-file", src, put)
                head = self.s3.head_object(Bucket=self.bucket, Key=key)
                self.assertEqual(head["ContentLength"], os.path.getsize(src))
                with open(src, "rb") as f:
                    self.assertEqual(head["ETag"], f'"{hashlib.md5(f.read()).hexdigest()}"')
                get = self.presign("get_object", key)
                back = os.path.join(self.tmp, "back.bin")
                self.curl("-f", "-o", back, get)
                self.assertEqual(file_digest(back), file_digest(src))
                # HEAD with the GET URL is not the same request: curl -I sends HEAD, which the
                # signature (method GET) does not cover.
                code, _ = self.status_and_body("-I", get)
                self.assertEqual(code, 403)

    def test_presigned_get_ranged_bytes(self):
        # Range is not among the signed headers: the same URL serves any range.
        data = os.urandom(100000)
        self.s3.put_object(Bucket=self.bucket, Key="ranged.bin", Body=data)
        get = self.presign("get_object", "ranged.bin")
        out = os.path.join(self.tmp, "ranged.out")
        self.curl("-f", "-r", "1000-1999", "-o", out, get)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data[1000:2000])

    def test_presigned_put_with_content_type(self):
        # Signed Content-Type: the request must carry exactly that header.
        put = self.presign("put_object", "typed.txt", ContentType="text/plain")
        src = os.path.join(self.tmp, "typed.txt")
        with open(src, "wb") as f:
            f.write(b"typed\n")
        self.curl("-f", "-X", "PUT", "-H", "Content-Type: text/plain", "--upload-file", src, put)
        self.assertEqual(self.s3.head_object(Bucket=self.bucket, Key="typed.txt")["ContentType"],
                         "text/plain")
        code, body = self.status_and_body("-X", "PUT", "-H", "Content-Type: text/html",
                                          "--upload-file", src, put)
        self.assertEqual(code, 403, body)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)

    def test_expired_url(self):
        self.s3.put_object(Bucket=self.bucket, Key="exp.txt", Body=b"soon gone")
        url = self.presign("get_object", "exp.txt", expires=1)
        self.assertIn("X-Amz-Expires=1&", url)
        time.sleep(2.2)
        code, body = self.status_and_body(url)
        self.assertEqual(code, 403, body)
        self.assertIn("<Code>AccessDenied</Code>", body)
        self.assertRegex(body, r"<Message>[^<]*expired[^<]*</Message>")
        self.assertEqual(self.curl("-f", url, check=False).returncode, 22)  # curl -f: HTTP >= 400

    def test_tampered_url(self):
        self.s3.put_object(Bucket=self.bucket, Key="t1.txt", Body=b"one")
        self.s3.put_object(Bucket=self.bucket, Key="t2.txt", Body=b"two")
        url = self.presign("get_object", "t1.txt")
        code, body = self.status_and_body(url)
        self.assertEqual((code, body), (200, "one"))
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        sig = query["X-Amz-Signature"]
        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        tampered = {
            "other key": url.replace("/t1.txt?", "/t2.txt?"),
            "signature": url.replace(sig, flipped),
            "expires": url.replace("X-Amz-Expires=300", "X-Amz-Expires=600"),
            "extra param": url + "&response-content-type=text%2Fhtml",
        }
        for what, bad in tampered.items():
            with self.subTest(what=what):
                self.assertNotEqual(bad, url)
                code, body = self.status_and_body(bad)
                self.assertEqual(code, 403, body)
                self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        # Another user's key id with alice's signature.
        code, body = self.status_and_body(url.replace(USERS[0]["access_key"],
                                                      USERS[1]["access_key"]))
        self.assertEqual(code, 403, body)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        # An unknown key id.
        code, body = self.status_and_body(url.replace(USERS[0]["access_key"],
                                                      "AKIDNOSUCHUSER000000"))
        self.assertEqual(code, 403, body)
        self.assertIn("<Code>InvalidAccessKeyId</Code>", body)

    @needs(curl_supports_aws_sigv4(), "this curl has no --aws-sigv4")
    def test_curl_aws_sigv4(self):
        user = f"{USERS[0]['access_key']}:{USERS[0]['secret_key']}"
        sign = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", user]
        src = os.path.join(self.tmp, "sig.bin")
        write_random(src, 2 * MIB + 1)
        base = f"{self.server.endpoint}/{self.bucket}"
        # S3 requires x-amz-content-sha256 on header-signed requests; curl 7.88 does not add it
        # by itself (newer curls do for service "s3"), so it is passed, and curl signs it.
        sha = file_digest(src)
        self.curl("-f", *sign, "-H", f"x-amz-content-sha256: {sha}", "-X", "PUT",
                  "--upload-file", src, f"{base}/sigv4/object.bin")
        self.assertEqual(self.s3.head_object(Bucket=self.bucket,
                                             Key="sigv4/object.bin")["ContentLength"],
                         os.path.getsize(src))
        back = os.path.join(self.tmp, "sig.back")
        self.curl("-f", *sign, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o", back,
                  f"{base}/sigv4/object.bin")
        self.assertEqual(file_digest(back), sha)
        # UNSIGNED-PAYLOAD for a PUT, too.
        self.curl("-f", *sign, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-X", "PUT",
                  "--data-binary", "small body", f"{base}/sigv4/small.txt")
        got = self.s3.get_object(Bucket=self.bucket, Key="sigv4/small.txt")["Body"].read()
        self.assertEqual(got, b"small body")
        # A declared payload hash that does not match the body is refused.
        code, body = self.status_and_body(*sign, "-H", f"x-amz-content-sha256: {sha}", "-X",
                                          "PUT", "--data-binary", "not that body",
                                          f"{base}/sigv4/bad.txt")
        self.assertEqual(code, 400, body)
        self.assertIn("<Code>XAmzContentSHA256Mismatch</Code>", body)
        # Wrong secret: SignatureDoesNotMatch.
        wrong = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                 f"{USERS[0]['access_key']}:wrong-secret"]
        code, body = self.status_and_body(*wrong, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                                          f"{base}/sigv4/object.bin")
        self.assertEqual(code, 403, body)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        # A listing, signed the same way.
        code, body = self.status_and_body(*sign, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                                          f"{base}?list-type=2&prefix=sigv4%2F")
        self.assertEqual(code, 200, body)
        self.assertEqual(re.findall(r"<Key>([^<]*)</Key>", body),
                         ["sigv4/object.bin", "sigv4/small.txt"])


if __name__ == "__main__":
    unittest.main()
