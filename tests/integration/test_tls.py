"""HTTPS: `vlake serve --tls-cert/--tls-key` against real clients.

A throwaway CA and a server certificate for 127.0.0.1/localhost are made with the openssl CLI
in a temporary folder. boto3 (verify=CA), the AWS CLI (--ca-bundle), curl (--cacert) and
`vlake cp`/`vlake ls` (--ca-bundle, VLAKE_CA_BUNDLE) talk to the S3 port over HTTPS; the vector
database's port answers over HTTPS too (its embedded client reaches the S3 port over HTTPS as
well). Plain HTTP to the TLS port and clients without the CA fail cleanly.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from client_util import clean_env, run
from vlake_server import USERS, VLAKE_BIN, VlakeServer, missing, needs

MIB = 1 << 20


def _openssl(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca_and_server_cert(d):
    """ca.pem (a CA) and server.pem/server.key (signed by it, for 127.0.0.1 and localhost)."""
    _openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
              "ca.pem", "-days", "1", "-subj", "/CN=vlake test CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
    _openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
              "server.csr", "-subj", "/CN=127.0.0.1"], d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
              "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "server.ext"], d)
    return (os.path.join(d, "ca.pem"), os.path.join(d, "server.pem"),
            os.path.join(d, "server.key"))


@needs(shutil.which("openssl") and shutil.which("curl"), "needs the openssl CLI and curl")
class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vlake-tls-")
        cls.ca, cls.cert, cls.key = make_ca_and_server_cert(cls.tmp)
        cls.server = VlakeServer(extra_args=["--tls-cert", cls.cert, "--tls-key", cls.key])
        cls.server.start()
        home = os.path.join(cls.tmp, "home")
        os.makedirs(home)
        cls.env = clean_env(home, {
            "AWS_ACCESS_KEY_ID": USERS[0]["access_key"],
            "AWS_SECRET_ACCESS_KEY": USERS[0]["secret_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
            "AWS_CONFIG_FILE": os.path.join(home, "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "aws-credentials"),
            "VLAKE_ACCESS_KEY": USERS[0]["access_key"],
            "VLAKE_SECRET_KEY": USERS[0]["secret_key"],
        })
        with open(cls.env["AWS_CONFIG_FILE"], "w") as f:
            f.write("[default]\nregion = us-east-1\ns3 =\n    signature_version = s3v4\n")
        cls.s3 = cls.boto3(verify=cls.ca)
        cls.s3.create_bucket(Bucket="tls")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def boto3(cls, verify, endpoint=None):
        import boto3
        from botocore.config import Config
        cfg = Config(signature_version="s3v4", retries={"max_attempts": 1},
                     s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30)
        return boto3.client("s3", endpoint_url=endpoint or cls.server.endpoint,
                            region_name="us-east-1", verify=verify,
                            aws_access_key_id=USERS[0]["access_key"],
                            aws_secret_access_key=USERS[0]["secret_key"], config=cfg)

    def test_banner_says_https(self):
        self.assertEqual(self.server.scheme, "https")
        self.assertTrue(self.server.endpoint.startswith("https://127.0.0.1:"))
        self.assertIsNotNone(self.server.vector_port, "vector db did not start over TLS")

    def test_boto3_put_get_list_and_large_bodies(self):
        body = os.urandom(3 * MIB + 17)  # a file body: read + SSL_write instead of sendfile
        self.s3.put_object(Bucket="tls", Key="dir/a.bin", Body=body)
        self.s3.put_object(Bucket="tls", Key="dir/b.txt", Body=b"small")
        self.assertEqual(self.s3.get_object(Bucket="tls", Key="dir/a.bin")["Body"].read(), body)
        ranged = self.s3.get_object(Bucket="tls", Key="dir/a.bin", Range="bytes=100000-199999")
        self.assertEqual(ranged["Body"].read(), body[100000:200000])
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket="tls", Prefix="dir/")["Contents"]]
        self.assertEqual(keys, ["dir/a.bin", "dir/b.txt"])

    def test_boto3_multipart(self):
        parts = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1234)]
        up = self.s3.create_multipart_upload(Bucket="tls", Key="mp.bin")
        done = []
        for i, p in enumerate(parts, start=1):
            r = self.s3.upload_part(Bucket="tls", Key="mp.bin", UploadId=up["UploadId"],
                                    PartNumber=i, Body=p)
            done.append({"PartNumber": i, "ETag": r["ETag"]})
        self.s3.complete_multipart_upload(Bucket="tls", Key="mp.bin", UploadId=up["UploadId"],
                                          MultipartUpload={"Parts": done})
        got = self.s3.get_object(Bucket="tls", Key="mp.bin")["Body"].read()
        self.assertEqual(got, b"".join(parts))

    def test_aws_cli_with_ca_bundle(self):
        aws = shutil.which("aws")
        cli = [aws] if aws else [sys.executable, "-m", "awscli"]
        probe = run(cli + ["--version"], self.env, check=False, timeout=60)
        if probe.returncode != 0:
            missing("no AWS CLI")
        src = os.path.join(self.tmp, "cli.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(2 * MIB))
        base = cli + ["--endpoint-url", self.server.endpoint, "--ca-bundle", self.ca]
        run(base + ["s3", "cp", src, "s3://tls/cli/cli.bin"], self.env, timeout=120)
        out = run(base + ["s3", "ls", "s3://tls/cli/"], self.env, timeout=60).stdout
        self.assertIn("cli.bin", out)
        back = os.path.join(self.tmp, "cli.back")
        run(base + ["s3", "cp", "s3://tls/cli/cli.bin", back], self.env, timeout=120)
        with open(src, "rb") as a, open(back, "rb") as b:
            self.assertEqual(a.read(), b.read())
        # Without the CA the CLI refuses the certificate.
        bad = run(cli + ["--endpoint-url", self.server.endpoint, "s3", "ls", "s3://tls/"],
                  self.env, check=False, timeout=60)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("certificate", (bad.stdout + bad.stderr).lower())

    def test_curl_presigned_get_and_vector_health(self):
        self.s3.put_object(Bucket="tls", Key="presigned.txt", Body=b"hello over tls")
        url = self.s3.generate_presigned_url("get_object", Params={"Bucket": "tls",
                                                                   "Key": "presigned.txt"},
                                             ExpiresIn=300)
        self.assertTrue(url.startswith("https://"))
        r = run(["curl", "-sS", "--fail", "--max-time", "20", "--cacert", self.ca, url],
                self.env, timeout=30)
        self.assertEqual(r.stdout, "hello over tls")
        h = run(["curl", "-sS", "--fail", "--max-time", "20", "--cacert", self.ca,
                 f"https://127.0.0.1:{self.server.vector_port}/v1/health"], self.env, timeout=30)
        self.assertIn("ok", h.stdout.lower())
        # The vector database's own S3 client reaches the storage node over HTTPS: a collection
        # is created (its manifest goes to the S3 port).
        bearer = f"Authorization: Bearer {USERS[0]['access_key']}:{USERS[0]['secret_key']}"
        c = run(["curl", "-sS", "--max-time", "20", "--cacert", self.ca, "-X", "POST",
                 "-H", bearer, "-H", "Content-Type: application/json", "-d",
                 '{"name":"tlsvec","dim":4,"metric":"L2"}',
                 f"https://127.0.0.1:{self.server.vector_port}/v1/collections"],
                self.env, check=False, timeout=30)
        listed = run([VLAKE_BIN, "collection", "list", "--endpoint",
                      f"https://127.0.0.1:{self.server.vector_port}", "--ca-bundle", self.ca],
                     self.env, check=False, timeout=30)
        self.assertEqual(listed.returncode, 0, listed.stderr + c.stdout)
        self.assertIn("tlsvec", listed.stdout, c.stdout)

    def test_plain_http_to_the_tls_port_fails_cleanly(self):
        plain = f"http://127.0.0.1:{self.server.port}/tls/x"
        r = run(["curl", "-sS", "--max-time", "10", "-o", "-", "-w", "%{http_code}", plain],
                self.env, check=False, timeout=20)
        self.assertTrue(r.stdout.endswith("400"), r.stdout + r.stderr)
        self.assertIn("https://", r.stdout)
        with self.assertRaises(Exception):
            self.boto3(verify=self.ca, endpoint=f"http://127.0.0.1:{self.server.port}") \
                .list_objects_v2(Bucket="tls")
        # The server is unharmed.
        self.s3.head_bucket(Bucket="tls")

    def test_clients_without_the_ca_fail_verification(self):
        import botocore.exceptions
        r = run(["curl", "-sS", "--max-time", "10", f"{self.server.endpoint}/health"], self.env,
                check=False, timeout=20)
        self.assertEqual(r.returncode, 60, r.stderr)  # CURLE_PEER_FAILED_VERIFICATION
        with self.assertRaises(botocore.exceptions.SSLError):
            self.boto3(verify=True).list_buckets()
        env = dict(self.env)
        env.pop("VLAKE_CA_BUNDLE", None)
        ls = run([VLAKE_BIN, "ls", "--endpoint", self.server.endpoint], env, check=False,
                 timeout=30)
        self.assertNotEqual(ls.returncode, 0)
        self.assertIn("certificate verify failed", ls.stderr)

    def test_vlake_cp_and_ls_with_ca_bundle(self):
        src = os.path.join(self.tmp, "vlake-cp.bin")
        data = os.urandom(MIB + 5)
        with open(src, "wb") as f:
            f.write(data)
        ep = ["--endpoint", self.server.endpoint]
        run([VLAKE_BIN, "cp", src, "s3://tls/vcp/x.bin", "--quiet", "--ca-bundle", self.ca] + ep,
            self.env, timeout=60)
        env = dict(self.env, VLAKE_CA_BUNDLE=self.ca)  # the env var instead of the flag
        out = run([VLAKE_BIN, "ls", "s3://tls/vcp/"] + ep, env, timeout=60).stdout
        self.assertIn("x.bin", out)
        back = os.path.join(self.tmp, "vlake-cp.back")
        run([VLAKE_BIN, "cp", "s3://tls/vcp/x.bin", back, "--quiet"] + ep, env, timeout=60)
        with open(back, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_env_vars_and_config_keys_enable_tls(self):
        import json
        config = os.path.join(self.tmp, "tls-config.json")
        with open(config, "w") as f:
            json.dump({"tls_cert": self.cert, "tls_key": self.key}, f)
        for env, args in (({"VLAKE_TLS_CERT": self.cert, "VLAKE_TLS_KEY": self.key}, []),
                          ({}, ["--config", config])):
            srv = VlakeServer(extra_args=["--no-vectordb"] + args, env=env).start()
            try:
                self.assertEqual(srv.scheme, "https")
                r = run(["curl", "-sS", "--fail", "--max-time", "10", "--cacert", self.ca,
                         f"{srv.endpoint}/health"], self.env, timeout=20)
                self.assertIn("ok", r.stdout.lower())
            finally:
                srv.stop()
                srv.cleanup()
        alone = run([VLAKE_BIN, "serve", "--tls-cert", self.cert, "--listen", "127.0.0.1:0",
                     "--data", os.path.join(self.tmp, "unused")], self.env, check=False,
                    timeout=30)
        self.assertEqual(alone.returncode, 2)
        self.assertIn("--tls-key", alone.stderr)


if __name__ == "__main__":
    unittest.main()
