"""The S3 wire protocol below the SDKs: every aws-chunked form (signed chunks, signed and
unsigned trailers, inside HTTP chunked transfer-encoding or not), x-amz-content-sha256
verification, 100-continue, CRC32C/CRC64NVME checksums, and malformed requests. Requests are
signed with botocore's SigV4 signer and sent with http.client so every byte is under control."""

import base64
import datetime
import hashlib
import hmac
import http.client
import os
import socket
import unittest
import urllib.parse
import zlib


from vlake_server import VlakeServer, boto3_client, USERS

REGION = "us-east-1"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def crc64nvme(data):
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x9A6C9329AC4BC9B5 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def b64(n, width):
    return base64.b64encode(n.to_bytes(width, "big")).decode()


def hmac256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Signer:
    """A plain SigV4 header signer written from the AWS spec (independent of the server and of
    botocore), plus the streaming chunk/trailer signing keys."""

    def __init__(self, server, user=0):
        self.server = server
        self.access_key = USERS[user]["access_key"]
        self.secret_key = USERS[user]["secret_key"]

    def headers(self, method, path, headers, payload_hash, query=""):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        out = {k: v for k, v in headers.items() if v is not None}
        out["x-amz-date"] = amz_date
        out["x-amz-content-sha256"] = payload_hash
        signed = sorted((k.lower(), " ".join(str(v).split())) for k, v in out.items()
                        if k.lower() not in ("expect", "content-length", "transfer-encoding"))
        names = ";".join(k for k, _ in signed)
        pairs = sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                       for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True))
        canonical = "\n".join([method, urllib.parse.quote(urllib.parse.unquote(path), safe="/-_.~"),
                               "&".join(f"{k}={v}" for k, v in pairs),
                               "".join(f"{k}:{v}\n" for k, v in signed), names, payload_hash])
        scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
        sig = hmac.new(self.signing_key(amz_date[:8]), sts.encode(), hashlib.sha256).hexdigest()
        out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                f"SignedHeaders={names}, Signature={sig}")
        out["X-Amz-Date"] = out.pop("x-amz-date")
        return out, None

    def signing_key(self, date):
        k = hmac256(("AWS4" + self.secret_key).encode(), date)
        k = hmac256(k, REGION)
        k = hmac256(k, "s3")
        return hmac256(k, "aws4_request")


def seed_signature(auth_header):
    return auth_header.split("Signature=")[1].strip()


def chunk_sig(key, amz_date, scope, prev, data):
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev,
                     hashlib.sha256(b"").hexdigest(), hashlib.sha256(data).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def trailer_sig(key, amz_date, scope, prev, trailer_block):
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                     hashlib.sha256(trailer_block).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


class RawProtocolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = VlakeServer().start()
        cls.s3 = boto3_client(cls.server)
        cls.s3.create_bucket(Bucket="raw")
        cls.signer = Signer(cls.server)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def send(self, method, path, headers, body=b"", chunked_te=False, query=""):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        target = path + (("?" + query) if query else "")
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if chunked_te:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 7000):
                piece = body[i:i + 7000]
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            conn.send(b"0\r\n\r\n")
        else:
            if "Content-Length" not in headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body:
                conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), data

    def streaming_put(self, key, data, mode, chunk=64 * 1024, tamper=None, trailer_value=None,
                      chunked_te=False):
        path = f"/raw/{urllib.parse.quote(key)}"
        base = {"Host": f"127.0.0.1:{self.server.port}", "Content-Encoding": "aws-chunked",
                "x-amz-decoded-content-length": str(len(data))}
        trailer_name = "x-amz-checksum-crc32"
        if mode != "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
            base["x-amz-trailer"] = trailer_name
        # Frame first with placeholder signatures to learn the length, then sign for real.
        headers, req = self.signer.headers("PUT", path, base, mode)
        amz_date = headers["X-Amz-Date"]
        scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
        key_bytes = self.signer.signing_key(amz_date[:8])
        signed = mode != "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

        def frame(seed):
            out = bytearray()
            prev = seed
            pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
            for idx, piece in enumerate(pieces):
                if signed:
                    sig = chunk_sig(key_bytes, amz_date, scope, prev, piece)
                    if tamper == "chunk" and idx == 0:
                        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
                    prev = sig
                    out += b"%x;chunk-signature=%s\r\n" % (len(piece), sig.encode())
                else:
                    out += b"%x\r\n" % len(piece)
                if piece:
                    out += piece + b"\r\n"
            if mode == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
                out += b"\r\n"
                return bytes(out)
            value = trailer_value or b64(zlib.crc32(data), 4)
            block = f"{trailer_name}:{value}\n".encode()
            out += f"{trailer_name}:{value}\r\n".encode()
            if signed:
                tsig = trailer_sig(key_bytes, amz_date, scope, prev, block)
                out += f"x-amz-trailer-signature:{tsig}\r\n".encode()
            out += b"\r\n"
            return bytes(out)

        body = frame("0" * 64)
        base["Content-Length"] = str(len(body)) if not chunked_te else None
        if chunked_te:
            del base["Content-Length"]
        headers, req = self.signer.headers("PUT", path, base, mode)
        body = frame(seed_signature(headers["Authorization"]))
        if not chunked_te:
            headers["Content-Length"] = str(len(body))
        return self.send("PUT", path, headers, body, chunked_te=chunked_te)

    def get(self, key):
        return self.s3.get_object(Bucket="raw", Key=key)["Body"].read()

    def assert_absent(self, key):
        with self.assertRaises(self.s3.exceptions.NoSuchKey):
            self.s3.get_object(Bucket="raw", Key=key)

    def test_signed_streaming_forms(self):
        data = os.urandom(200_000)
        for mode in ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                     "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]:
            for te in (False, True):
                key = f"stream-{mode}-{te}"
                status, headers, body = self.streaming_put(key, data, mode, chunked_te=te)
                self.assertEqual(status, 200, (mode, te, body))
                self.assertEqual(headers["etag"], '"%s"' % hashlib.md5(data).hexdigest())
                self.assertEqual(self.get(key), data)
                if "TRAILER" in mode:
                    h = self.s3.head_object(Bucket="raw", Key=key, ChecksumMode="ENABLED")
                    self.assertEqual(h["ChecksumCRC32"], b64(zlib.crc32(data), 4))

    def test_streaming_rejections_store_nothing(self):
        data = os.urandom(150_000)
        status, _, body = self.streaming_put("tampered", data, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                             tamper="chunk")
        self.assertEqual(status, 403, body)
        self.assertIn(b"<Code>SignatureDoesNotMatch</Code>", body)
        self.assert_absent("tampered")
        status, _, body = self.streaming_put("badtrailer", data, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                             trailer_value=b64(zlib.crc32(data) ^ 1, 4))
        self.assertEqual(status, 400, body)
        self.assertIn(b"<Code>BadDigest</Code>", body)
        self.assert_absent("badtrailer")

    def test_content_sha256_verified(self):
        data = b"hashed payload"
        path = "/raw/hashed"
        base = {"Host": f"127.0.0.1:{self.server.port}"}
        headers, _ = self.signer.headers("PUT", path, base, hashlib.sha256(data).hexdigest())
        status, _, body = self.send("PUT", path, headers, data)
        self.assertEqual(status, 200, body)
        headers, _ = self.signer.headers("PUT", "/raw/hashed2", base, hashlib.sha256(b"other").hexdigest())
        status, _, body = self.send("PUT", "/raw/hashed2", headers, data)
        self.assertEqual(status, 400)
        self.assertIn(b"<Code>XAmzContentSHA256Mismatch</Code>", body)
        self.assert_absent("hashed2")
        headers, _ = self.signer.headers("PUT", "/raw/nohash", base, "NOT-A-HASH")
        status, _, body = self.send("PUT", "/raw/nohash", headers, data)
        self.assertEqual(status, 400, body)

    def test_crc32c_and_crc64nvme_headers(self):
        data = os.urandom(5000)
        for name, value in [("x-amz-checksum-crc32c", b64(crc32c(data), 4)),
                            ("x-amz-checksum-crc64nvme", b64(crc64nvme(data), 8)),
                            ("x-amz-checksum-sha1", base64.b64encode(hashlib.sha1(data).digest()).decode()),
                            ("x-amz-checksum-sha256", base64.b64encode(hashlib.sha256(data).digest()).decode())]:
            path = f"/raw/{name}"
            headers, _ = self.signer.headers("PUT", path, {"Host": f"127.0.0.1:{self.server.port}", name: value},
                                             "UNSIGNED-PAYLOAD")
            status, rh, body = self.send("PUT", path, headers, data)
            self.assertEqual(status, 200, body)
            self.assertEqual(rh[name], value)
            bad = base64.b64encode(bytes(len(base64.b64decode(value)))).decode()
            headers, _ = self.signer.headers("PUT", path + "-bad", {"Host": f"127.0.0.1:{self.server.port}", name: bad},
                                             "UNSIGNED-PAYLOAD")
            status, _, body = self.send("PUT", path + "-bad", headers, data)
            self.assertEqual(status, 400, body)
            self.assertIn(b"<Code>BadDigest</Code>", body)
            headers, _ = self.signer.headers("GET", path, {"Host": f"127.0.0.1:{self.server.port}",
                                                           "x-amz-checksum-mode": "ENABLED"}, hashlib.sha256(b"").hexdigest())
            status, rh, body = self.send("GET", path, headers)
            self.assertEqual(rh.get(name), value)

    def test_expect_100_continue(self):
        data = os.urandom(3 * 1024 * 1024)
        path = "/raw/continue"
        headers, _ = self.signer.headers("PUT", path, {"Host": f"127.0.0.1:{self.server.port}",
                                                       "Expect": "100-continue"}, "UNSIGNED-PAYLOAD")
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(data)}\r\n\r\n"
        sock.sendall(head.encode())
        interim = sock.recv(4096)
        self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
        sock.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(4096)
        sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 200"), reply)
        self.assertEqual(self.get("continue"), data)
        # A request refused before the body (no such bucket) never gets the 100 and closes.
        headers, _ = self.signer.headers("PUT", "/nobucket/k", {"Host": f"127.0.0.1:{self.server.port}",
                                                               "Expect": "100-continue"}, "UNSIGNED-PAYLOAD")
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        head = "PUT /nobucket/k HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall((head + "Content-Length: 1000000\r\n\r\n").encode())
        reply = sock.recv(65536)
        sock.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 404"), reply)

    def test_missing_content_length_and_bad_xml(self):
        path = "/raw/nolength"
        headers, _ = self.signer.headers("PUT", path, {"Host": f"127.0.0.1:{self.server.port}",
                                                       "Content-Length": None}, "UNSIGNED-PAYLOAD")
        headers = {k: v for k, v in headers.items() if k != "Content-Length" and v is not None}
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.status, 411, body)
        self.assertIn(b"<Code>MissingContentLength</Code>", body)
        conn.close()
        for bad in [b"<Delete><Object><Key>a</Key></Object>", b"not xml", b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><Delete><Object><Key>&e;</Key></Object></Delete>"]:
            md5 = base64.b64encode(hashlib.md5(bad).digest()).decode()
            headers, _ = self.signer.headers("POST", "/raw", {"Host": f"127.0.0.1:{self.server.port}", "Content-MD5": md5},
                                             hashlib.sha256(bad).hexdigest(), query="delete=")
            status, _, body = self.send("POST", "/raw", headers, bad, query="delete=")
            self.assertEqual(status, 400, body)
            self.assertIn(b"<Code>MalformedXML</Code>", body)
        good = b"<Delete><Object><Key>a</Key></Object></Delete>"
        headers, _ = self.signer.headers("POST", "/raw", {"Host": f"127.0.0.1:{self.server.port}"},
                                         hashlib.sha256(good).hexdigest(), query="delete=")
        status, _, body = self.send("POST", "/raw", headers, good, query="delete=")
        self.assertEqual(status, 400, body)
        self.assertIn(b"<Code>InvalidRequest</Code>", body)  # DeleteObjects needs Content-MD5

    def test_malformed_http_gets_400_and_server_survives(self):
        for raw in [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                    b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"]:
            sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
            sock.sendall(raw)
            reply = sock.recv(4096)
            sock.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 4") or reply.startswith(b"HTTP/1.1 5"), (raw, reply))
        self.assertEqual(self.s3.list_buckets()["ResponseMetadata"]["HTTPStatusCode"], 200)


if __name__ == "__main__":
    unittest.main()
