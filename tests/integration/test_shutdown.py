"""Graceful shutdown: SIGTERM stops accepting new connections but lets an upload in flight
finish and be acknowledged, then the process exits 0 and the object is durable."""

import hashlib
import http.client
import os
import signal
import socket
import time
import unittest
import urllib.parse

from vlake_server import VlakeServer, boto3_client


class ShutdownTest(unittest.TestCase):
    def test_sigterm_drains_in_flight_upload(self):
        server = VlakeServer().start()
        try:
            s3 = boto3_client(server)
            s3.create_bucket(Bucket="drain")
            url = s3.generate_presigned_url("put_object", Params={"Bucket": "drain", "Key": "slow"},
                                            ExpiresIn=300)
            u = urllib.parse.urlsplit(url)
            data = os.urandom(8 * 1024 * 1024)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            conn.putrequest("PUT", u.path + "?" + u.query)
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders()
            conn.send(data[:1024 * 1024])
            time.sleep(0.3)  # the request is now in flight on the server
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            # New connections are no longer accepted while the old one drains.
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", server.port), timeout=2).recv(1)
            for i in range(1024 * 1024, len(data), 1024 * 1024):
                conn.send(data[i:i + 1024 * 1024])
                time.sleep(0.05)
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200, resp.read())
            self.assertEqual(resp.getheader("ETag"), '"%s"' % hashlib.md5(data).hexdigest())
            conn.close()
            self.assertEqual(server.proc.wait(timeout=30), 0)
            # The acknowledged object is there after a restart.
            again = VlakeServer(data_dir=server.data_dir).start()
            try:
                body = boto3_client(again).get_object(Bucket="drain", Key="slow")["Body"].read()
                self.assertEqual(body, data)
            finally:
                again.stop()
                again.cleanup()
        finally:
            server.kill()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
