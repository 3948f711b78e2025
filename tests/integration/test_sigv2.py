"""AWS Signature Version 2 against a real vlake server: boto3 signing with
signature_version='s3' (header form: put/get/list/delete, multipart), boto3 presigned URLs
(query form, path and virtual-host style) fetched with urllib and curl, s3cmd with
signature_v2 and `s3cmd signurl` fetched with curl, and the refusals: wrong signature (403
SignatureDoesNotMatch), unknown key (403 InvalidAccessKeyId), expired URL (403 AccessDenied),
skewed Date (403 RequestTimeTooSkewed)."""

import base64
import email.utils
import hashlib
import hmac
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from client_util import clean_env, run, stop_server_and_check_log, write_s3cmd_config
from vlake_server import USERS, VlakeServer, boto3_client, needs

CURL = shutil.which("curl")
S3CMD = shutil.which("s3cmd")


def v2_client(server, addressing_style="path", endpoint=None):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=endpoint or server.endpoint, region_name="us-east-1",
                        aws_access_key_id=USERS[0]["access_key"],
                        aws_secret_access_key=USERS[0]["secret_key"],
                        config=Config(signature_version="s3", retries={"max_attempts": 1},
                                      s3={"addressing_style": addressing_style}))


def sign_v2(secret, string_to_sign):
    mac = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


class SigV2Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vlake-sigv2-")
        cls.server = VlakeServer().start()
        cls.env = clean_env(cls.tmp)
        cls.v4 = boto3_client(cls.server)  # to check what the SigV2 requests did
        cls.s3 = v2_client(cls.server)
        cls.bucket = f"sigv2-{os.getpid()}"
        cls.s3.create_bucket(Bucket=cls.bucket)

    @classmethod
    def tearDownClass(cls):
        stop_server_and_check_log(cls.server, cls.tmp)

    def http_error(self, url, headers=None, method="GET", data=None):
        req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=60)
        return cm.exception.code, cm.exception.read().decode("utf-8", "replace")

    # ---- header form (boto3 signature_version='s3') ----

    def test_boto3_put_get_list_delete(self):
        body = os.urandom(100_000)
        put = self.s3.put_object(Bucket=self.bucket, Key="dir/a b+c.bin", Body=body,
                                 ContentType="application/x-test", Metadata={"who": "sigv2"})
        self.assertEqual(put["ETag"].strip('"'), hashlib.md5(body).hexdigest())
        got = self.s3.get_object(Bucket=self.bucket, Key="dir/a b+c.bin")
        self.assertEqual(got["Body"].read(), body)
        self.assertEqual(got["Metadata"], {"who": "sigv2"})
        part = self.s3.get_object(Bucket=self.bucket, Key="dir/a b+c.bin", Range="bytes=10-19")
        self.assertEqual(part["Body"].read(), body[10:20])
        keys = [o["Key"] for o in self.s3.list_objects(Bucket=self.bucket, Prefix="dir/")["Contents"]]
        self.assertIn("dir/a b+c.bin", keys)
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.bucket, Prefix="dir/")["Contents"]]
        self.assertIn("dir/a b+c.bin", keys)
        self.assertIn(self.bucket, [b["Name"] for b in self.s3.list_buckets()["Buckets"]])
        self.s3.delete_object(Bucket=self.bucket, Key="dir/a b+c.bin")
        with self.assertRaises(self.v4.exceptions.ClientError) as cm:
            self.v4.head_object(Bucket=self.bucket, Key="dir/a b+c.bin")
        self.assertEqual(cm.exception.response["Error"]["Code"], "404")

    def test_boto3_subresources_are_signed(self):
        # ?tagging, ?uploads, ?uploadId=&partNumber= take part in the string to sign.
        self.s3.put_object(Bucket=self.bucket, Key="tagged", Body=b"x")
        self.s3.put_object_tagging(Bucket=self.bucket, Key="tagged",
                                   Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
        tags = self.s3.get_object_tagging(Bucket=self.bucket, Key="tagged")["TagSet"]
        self.assertEqual(tags, [{"Key": "k", "Value": "v"}])
        up = self.s3.create_multipart_upload(Bucket=self.bucket, Key="mp")["UploadId"]
        data = [os.urandom(5 << 20), b"tail"]
        parts = []
        for i, chunk in enumerate(data, start=1):
            etag = self.s3.upload_part(Bucket=self.bucket, Key="mp", UploadId=up, PartNumber=i,
                                       Body=chunk)["ETag"]
            parts.append({"PartNumber": i, "ETag": etag})
        self.assertEqual(len(self.s3.list_parts(Bucket=self.bucket, Key="mp", UploadId=up)["Parts"]), 2)
        self.s3.complete_multipart_upload(Bucket=self.bucket, Key="mp", UploadId=up,
                                          MultipartUpload={"Parts": parts})
        self.assertEqual(self.v4.get_object(Bucket=self.bucket, Key="mp")["Body"].read(), b"".join(data))

    def test_wrong_secret_and_unknown_key(self):
        import boto3
        from botocore.config import Config
        for key, secret, code in ((USERS[0]["access_key"], "not-the-secret", "SignatureDoesNotMatch"),
                                  ("AKIDUNKNOWN000000000", "whatever", "InvalidAccessKeyId")):
            bad = boto3.client("s3", endpoint_url=self.server.endpoint, region_name="us-east-1",
                               aws_access_key_id=key, aws_secret_access_key=secret,
                               config=Config(signature_version="s3", retries={"max_attempts": 1},
                                             s3={"addressing_style": "path"}))
            with self.assertRaises(bad.exceptions.ClientError) as cm:
                bad.list_objects(Bucket=self.bucket)
            self.assertEqual(cm.exception.response["Error"]["Code"], code)
            self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)

    def test_hand_signed_date_skew_and_tamper(self):
        self.v4.put_object(Bucket=self.bucket, Key="hand", Body=b"hand signed")
        resource = f"/{self.bucket}/hand"

        def headers_at(t, resource_signed=resource):
            date = email.utils.formatdate(t, usegmt=True)
            sig = sign_v2(USERS[0]["secret_key"], f"GET\n\n\n{date}\n{resource_signed}")
            return {"Date": date, "Authorization": f"AWS {USERS[0]['access_key']}:{sig}"}

        url = self.server.endpoint + resource
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers_at(time.time())),
                                    timeout=60) as r:
            self.assertEqual(r.read(), b"hand signed")
        code, body = self.http_error(url, headers_at(time.time() - 3600))
        self.assertEqual(code, 403)
        self.assertIn("RequestTimeTooSkewed", body)
        code, body = self.http_error(url, headers_at(time.time(), f"/{self.bucket}/other"))
        self.assertEqual(code, 403)
        self.assertIn("SignatureDoesNotMatch", body)
        code, body = self.http_error(url, {"Authorization": f"AWS {USERS[0]['access_key']}"})
        self.assertEqual(code, 400)
        self.assertIn("AuthorizationHeaderMalformed", body)

    # ---- query form (presigned URLs) ----

    def test_boto3_presigned_get_put_urllib(self):
        # Content-Type is on a line of the string to sign: the URL fixes it.
        put_url = self.s3.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": "pre/put.txt",
                                  "ContentType": "text/plain"}, ExpiresIn=300)
        self.assertIn("AWSAccessKeyId=", put_url)
        self.assertIn("Signature=", put_url)
        code, body = self.http_error(put_url, {"Content-Type": "text/html"}, method="PUT",
                                     data=b"wrong type")
        self.assertEqual(code, 403)
        self.assertIn("SignatureDoesNotMatch", body)
        req = urllib.request.Request(put_url, data=b"presigned v2 put", method="PUT",
                                     headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(req, timeout=60) as r:
            self.assertEqual(r.status, 200)
        get_url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": "pre/put.txt",
                                  "ResponseContentType": "text/x-override"}, ExpiresIn=300)
        with urllib.request.urlopen(get_url, timeout=60) as r:
            self.assertEqual(r.read(), b"presigned v2 put")
            self.assertEqual(r.headers["Content-Type"], "text/x-override")

    @needs(CURL, "curl is not installed")
    def test_boto3_presigned_curl_and_refusals(self):
        self.v4.put_object(Bucket=self.bucket, Key="pre/get.bin", Body=b"curl fetches this")
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": "pre/get.bin"}, ExpiresIn=300)
        out = run([CURL, "-sSf", "--max-time", "60", url], self.env, binary=True)
        self.assertEqual(out.stdout, b"curl fetches this")

        # Tampered signature, tampered key, unknown access key, expired.
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        sig = q["Signature"][0]
        flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
        bad_sig = url.replace(urllib.parse.quote(sig, safe=""), urllib.parse.quote(flipped, safe=""))
        self.assertNotEqual(bad_sig, url)
        code, body = self.http_error(bad_sig)
        self.assertEqual((code, "SignatureDoesNotMatch" in body), (403, True), body)
        code, body = self.http_error(url.replace("pre/get.bin", "pre/other.bin"))
        self.assertEqual((code, "SignatureDoesNotMatch" in body), (403, True), body)
        code, body = self.http_error(url.replace(USERS[0]["access_key"], "AKIDUNKNOWN000000000"))
        self.assertEqual((code, "InvalidAccessKeyId" in body), (403, True), body)
        expired = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": "pre/get.bin"}, ExpiresIn=1)
        time.sleep(2.5)
        code, body = self.http_error(expired)
        self.assertEqual(code, 403)
        self.assertIn("AccessDenied", body)
        self.assertIn("Request has expired", body)

    @needs(CURL, "curl is not installed")
    def test_boto3_presigned_virtual_host_style(self):
        self.v4.put_object(Bucket=self.bucket, Key="vh/key", Body=b"virtual v2")
        vh = v2_client(self.server, "virtual", endpoint=f"http://localhost:{self.server.port}")
        url = vh.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": "vh/key"},
                                        ExpiresIn=60)
        self.assertTrue(url.startswith(f"http://{self.bucket}.localhost:{self.server.port}/vh/key?"), url)
        resolve = f"{self.bucket}.localhost:{self.server.port}:127.0.0.1"
        out = subprocess.run([CURL, "-sSf", "--resolve", resolve, url], capture_output=True, check=True)
        self.assertEqual(out.stdout, b"virtual v2")

    # ---- s3cmd ----

    def s3cmd_config(self):
        path = write_s3cmd_config(os.path.join(self.tmp, "s3cfg-v2"), self.server.port,
                                  USERS[0]["access_key"], USERS[0]["secret_key"],
                                  signature_v2=True)
        home = os.path.join(self.tmp, "home-s3cmd")
        os.makedirs(home, exist_ok=True)
        return path, clean_env(home)

    @needs(S3CMD and CURL, "s3cmd or curl is not installed")
    def test_s3cmd_v2_put_get_and_signurl(self):
        config, env = self.s3cmd_config()
        src = os.path.join(self.tmp, "s3cmd-src.txt")
        with open(src, "wb") as f:
            f.write(b"s3cmd with signature v2\n" * 50)
        s3cmd = [S3CMD, "-c", config]
        run(s3cmd + ["put", src, f"s3://{self.bucket}/s3cmd/file.txt"], env, timeout=120)
        dst = os.path.join(self.tmp, "s3cmd-dst.txt")
        run(s3cmd + ["get", "--force", f"s3://{self.bucket}/s3cmd/file.txt", dst], env, timeout=120)
        with open(src, "rb") as a, open(dst, "rb") as b:
            self.assertEqual(a.read(), b.read())
        listing = run(s3cmd + ["ls", f"s3://{self.bucket}/s3cmd/"], env, timeout=120).stdout
        self.assertIn("s3cmd/file.txt", listing)

        expiry = int(time.time()) + 300
        url = run(s3cmd + ["signurl", f"s3://{self.bucket}/s3cmd/file.txt", str(expiry)], env,
                  timeout=120).stdout.strip()
        self.assertIn("Signature=", url)
        out = run([CURL, "-sSf", "--max-time", "60", url], self.env, binary=True)
        with open(src, "rb") as a:
            self.assertEqual(out.stdout, a.read())
        # An s3cmd URL whose Expires is in the past is refused.
        past = run(s3cmd + ["signurl", f"s3://{self.bucket}/s3cmd/file.txt", str(int(time.time()) - 10)],
                   env, timeout=120).stdout.strip()
        code, body = self.http_error(past)
        self.assertEqual(code, 403)
        self.assertIn("Request has expired", body)
        run(s3cmd + ["del", f"s3://{self.bucket}/s3cmd/file.txt"], env, timeout=120)


if __name__ == "__main__":
    unittest.main()
