"""Crash durability: kill -9 the server in the middle of a stream of concurrent PUTs and
multipart uploads, restart it on the same data folder, and check that every acknowledged object
reads back byte-exact and that no partial object is visible (each key holds its last
acknowledged version or a version whose request was still in flight at the kill)."""

import hashlib
import os
import random
import threading
import time
import unittest

from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
import botocore.exceptions

from vlake_server import VlakeServer, boto3_client

MIB = 1024 * 1024


def payload(tag, size):
    rnd = random.Random(tag)
    return rnd.randbytes(size)


class CrashTest(unittest.TestCase):
    def test_kill9_during_concurrent_writes(self):
        server = VlakeServer().start()
        data_dir = server.data_dir
        servers = [server]
        try:
            s3 = boto3_client(server)
            s3.create_bucket(Bucket="crash")
            acked = {}      # key -> md5 of the last acknowledged version
            attempts = {}   # key -> md5s of versions sent after the last ack (maybe committed)
            lock = threading.Lock()
            stop = threading.Event()

            def record_attempt(key, digest):
                with lock:
                    attempts.setdefault(key, set()).add(digest)

            def record_ack(key, digest):
                with lock:
                    acked[key] = digest
                    attempts[key] = set()

            def put_worker(w):
                client = boto3_client(server)
                seq = 0
                while not stop.is_set():
                    key = f"w{w}/k{seq % 5}"
                    size = random.Random(seq * 31 + w).choice([0, 1, 4096, 300_000, 2 * MIB + 3])
                    body = payload(f"{w}-{seq}", size)
                    digest = hashlib.md5(body).hexdigest()
                    record_attempt(key, digest)
                    try:
                        client.put_object(Bucket="crash", Key=key, Body=body)
                        record_ack(key, digest)
                    except (ClientError, botocore.exceptions.BotoCoreError, ConnectionError):
                        return
                    seq += 1

            def multipart_worker(w):
                client = boto3_client(server)
                seq = 0
                while not stop.is_set():
                    key = f"mp{w}/k{seq % 2}"
                    parts = [payload(f"mp{w}-{seq}-1", 5 * MIB), payload(f"mp{w}-{seq}-2", 12345)]
                    digest = hashlib.md5(b"".join(parts)).hexdigest()
                    try:
                        uid = client.create_multipart_upload(Bucket="crash", Key=key)["UploadId"]
                        etags = [client.upload_part(Bucket="crash", Key=key, UploadId=uid,
                                                    PartNumber=i + 1, Body=p)["ETag"]
                                 for i, p in enumerate(parts)]
                        record_attempt(key, digest)
                        client.complete_multipart_upload(
                            Bucket="crash", Key=key, UploadId=uid,
                            MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e}
                                                       for i, e in enumerate(etags)]})
                        record_ack(key, digest)
                    except (ClientError, botocore.exceptions.BotoCoreError, ConnectionError):
                        return
                    seq += 1

            for cycle in range(3):
                stop.clear()
                threads = [threading.Thread(target=put_worker, args=(w,)) for w in range(6)]
                threads += [threading.Thread(target=multipart_worker, args=(w,)) for w in range(2)]
                for t in threads:
                    t.start()
                time.sleep(2.5 + cycle)
                server.kill()  # SIGKILL mid-stream
                stop.set()
                for t in threads:
                    t.join(timeout=60)
                self.assertGreater(len(acked), 0)

                server = VlakeServer(data_dir=data_dir).start()
                servers.append(server)
                s3 = boto3_client(server)
                listed = {}
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket="crash"):
                    for o in page.get("Contents", []):
                        listed[o["Key"]] = o
                for key, digest in acked.items():
                    body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
                    got = hashlib.md5(body).hexdigest()
                    allowed = {digest} | attempts.get(key, set())
                    self.assertIn(got, allowed, f"cycle {cycle}: {key} holds an unacknowledged or torn version")
                for key in listed:
                    body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
                    got = hashlib.md5(body).hexdigest()
                    allowed = ({acked[key]} if key in acked else set()) | attempts.get(key, set())
                    self.assertIn(got, allowed, f"cycle {cycle}: {key} is visible with bytes nobody sent")
                    self.assertEqual(len(body), listed[key]["Size"])
                # Interrupted writes leave nothing behind once recovery has run.
                self.assertEqual(os.listdir(os.path.join(data_dir, "tmp")), [])
                # Adopt what is now visible as the acknowledged state for the next cycle.
                for key in listed:
                    body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
                    acked[key] = hashlib.md5(body).hexdigest()
                    attempts[key] = set()
                print(f"cycle {cycle}: {len(acked)} keys verified after kill -9", flush=True)
        finally:
            server.stop()
            for s in reversed(servers):
                s.cleanup()


if __name__ == "__main__":
    unittest.main()
