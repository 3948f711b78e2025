"""Connection hardening against a real `vlake serve`: idle and slowloris sockets do not starve a
signing client (boto3), and they are closed within their limits; a signed request whose body
dribbles gets 400 RequestTimeout and the connection closes.
"""

import socket
import threading
import time
import unittest

from vlake_server import USERS, VlakeServer, boto3_client

HEADER_TIMEOUT_S = 3
IDLE_TIMEOUT_S = 4


def _connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _closed_by_server(sock, wait_s):
    """True when the server closed `sock` within wait_s (EOF or reset)."""
    sock.settimeout(wait_s)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class ConnectionLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = VlakeServer(extra_args=[
            "--no-vectordb", "--header-timeout-s", str(HEADER_TIMEOUT_S),
            "--idle-timeout-s", str(IDLE_TIMEOUT_S)]).start()
        cls.s3 = boto3_client(cls.server, connect_timeout=5, read_timeout=10)
        cls.s3.create_bucket(Bucket="limits")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_idle_and_slowloris_sockets_do_not_starve_boto3(self):
        port = self.server.port
        idle = [_connect(port) for _ in range(200)]
        slow = [_connect(port) for _ in range(50)]
        opened = time.monotonic()
        stop = threading.Event()

        def dribble():
            # One header byte per socket every second: a head that never completes.
            head = b"GET /limits/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
            i = 0
            while not stop.is_set() and i < len(head):
                for s in slow:
                    try:
                        s.send(head[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(1.0)

        t = threading.Thread(target=dribble)
        t.start()
        try:
            worst = 0.0
            for i in range(30):
                body = b"payload-%d" % i
                t0 = time.monotonic()
                self.s3.put_object(Bucket="limits", Key="k%d" % i, Body=body)
                got = self.s3.get_object(Bucket="limits", Key="k%d" % i)["Body"].read()
                worst = max(worst, time.monotonic() - t0)
                self.assertEqual(got, body)
                time.sleep(0.1)
            self.assertLess(worst, 2.0, "a signed PUT+GET waited behind slow sockets")
            # Every idle and slowloris socket is closed within the header timeout (plus slack).
            left = HEADER_TIMEOUT_S + 3 - (time.monotonic() - opened)
            open_idle = [s for s in idle if not _closed_by_server(s, max(0.1, left))]
            open_slow = [s for s in slow if not _closed_by_server(s, 0.5)]
            self.assertEqual(len(open_idle), 0)
            self.assertEqual(len(open_slow), 0)
        finally:
            stop.set()
            t.join(timeout=10)
            for s in idle + slow:
                s.close()

    def test_idle_keep_alive_connection_times_out(self):
        s = _connect(self.server.port)
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.settimeout(5)
            self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200"))
            t0 = time.monotonic()
            self.assertTrue(_closed_by_server(s, IDLE_TIMEOUT_S + 3))
            self.assertGreater(time.monotonic() - t0, HEADER_TIMEOUT_S - 1)
        finally:
            s.close()

    def test_signed_put_with_dribbled_body_gets_request_timeout(self):
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        url = f"{self.server.endpoint}/limits/slow-body"
        req = AWSRequest(method="PUT", url=url, headers={
            "Host": f"127.0.0.1:{self.server.port}", "Content-Length": "100000",
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        S3SigV4Auth(Credentials(USERS[0]["access_key"], USERS[0]["secret_key"]), "s3",
                    "us-east-1").add_auth(req)
        head = f"PUT /limits/slow-body HTTP/1.1\r\n"
        for k, v in req.headers.items():
            head += f"{k}: {v}\r\n"
        head += "\r\n"
        s = _connect(self.server.port)
        try:
            s.sendall(head.encode())
            s.setblocking(False)
            t0 = time.monotonic()
            reply = b""
            # One byte per 2 s; the default rule (1 KiB/s per 10 s after a 10 s grace) ends it
            # after about 20 s. Bounded at 40 s.
            while time.monotonic() - t0 < 40:
                try:
                    s.send(b"x")
                except BlockingIOError:
                    pass
                except OSError:
                    break
                end = time.monotonic() + 2
                while time.monotonic() < end:
                    try:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        reply += chunk
                    except BlockingIOError:
                        time.sleep(0.05)
                    except OSError:
                        break
                if reply:
                    break
            elapsed = time.monotonic() - t0
            self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply[:200])
            self.assertIn(b"<Code>RequestTimeout</Code>", reply)
            self.assertLess(elapsed, 30)
            self.assertTrue(_closed_by_server_blocking(s, 5))
        finally:
            s.close()
        # The store kept nothing of the failed upload.
        with self.assertRaises(Exception):
            self.s3.head_object(Bucket="limits", Key="slow-body")


def _closed_by_server_blocking(sock, wait_s):
    sock.setblocking(True)
    return _closed_by_server(sock, wait_s)


if __name__ == "__main__":
    unittest.main()
