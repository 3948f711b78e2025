"""A 5 GiB object through the server: PUT streams to disk and GET goes out zero-copy, so the
server's peak RSS stays under 256 MiB whatever the object size."""

import hashlib
import http.client
import os
import unittest
import urllib.parse

from vlake_server import VlakeServer, boto3_client

GIB = 1024 ** 3
CHUNK = 4 * 1024 * 1024
RSS_LIMIT_BYTES = 256 * 1024 * 1024


def peak_rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


class LargeObjectTest(unittest.TestCase):
    def test_5gib_put_get_bounded_memory(self):
        size = int(os.environ.get("VLAKE_LARGE_OBJECT_BYTES", 5 * GIB))
        with VlakeServer() as server:
            s3 = boto3_client(server)
            s3.create_bucket(Bucket="large")
            block = os.urandom(CHUNK)
            put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "large", "Key": "big"},
                                                ExpiresIn=3600)
            u = urllib.parse.urlsplit(put_url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
            conn.putrequest("PUT", u.path + "?" + u.query)
            conn.putheader("Content-Length", str(size))
            conn.endheaders()
            md5 = hashlib.md5()
            sent = 0
            while sent < size:
                n = min(CHUNK, size - sent)
                # Vary the stream so a dedup or caching bug cannot hide.
                piece = block[:n] if (sent // CHUNK) % 2 == 0 else block[n - 1::-1]
                conn.send(piece)
                md5.update(piece)
                sent += n
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual(resp.status, 200, body)
            self.assertEqual(resp.getheader("ETag"), '"%s"' % md5.hexdigest())
            conn.close()

            get_url = s3.generate_presigned_url("get_object", Params={"Bucket": "large", "Key": "big"},
                                                ExpiresIn=3600)
            u = urllib.parse.urlsplit(get_url)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
            conn.request("GET", u.path + "?" + u.query)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(int(resp.getheader("Content-Length")), size)
            got = hashlib.md5()
            received = 0
            while True:
                data = resp.read(CHUNK)
                if not data:
                    break
                got.update(data)
                received += len(data)
            conn.close()
            self.assertEqual(received, size)
            self.assertEqual(got.hexdigest(), md5.hexdigest())
            peak = peak_rss_bytes(server.proc.pid)
            print(f"server peak RSS {peak / 2**20:.1f} MiB for a {size / GIB:.2f} GiB PUT+GET", flush=True)
            self.assertLess(peak, RSS_LIMIT_BYTES)


if __name__ == "__main__":
    unittest.main()
