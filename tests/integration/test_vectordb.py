"""The vector database through a real `vlake serve` (and `vlake vectordb`), over its JSON API
and the CLI: recall and filters against a brute-force reference, deletes, kill -9 durability,
concurrency, bad requests, and the engine alone against a storage node over plain HTTP.
"""

import glob
import json
import os
import random
import shutil
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from vlake_server import USERS, VLAKE_BIN, VlakeServer, boto3_client


# The vector API requires credentials: alice's keys by default (Milvus clients send the same
# Bearer form).
def bearer(user=0):
    return "Bearer %s:%s" % (USERS[user]["access_key"], USERS[user]["secret_key"])


# The CLI's credentials come from the environment.
CLI_ENV = dict(os.environ, VLAKE_ACCESS_KEY=USERS[0]["access_key"],
               VLAKE_SECRET_KEY=USERS[0]["secret_key"])


def call(endpoint, method, path, body=None, timeout=120, authorization=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoint + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if authorization != "":
        req.add_header("Authorization", authorization or bearer())
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def ok(endpoint, method, path, body=None):
    status, reply = call(endpoint, method, path, body)
    if status >= 300:
        raise AssertionError(f"{method} {path}: {status} {reply}")
    return reply


def ok_as(endpoint, authorization, method, path, body=None):
    status, reply = call(endpoint, method, path, body, authorization=authorization)
    if status >= 300:
        raise AssertionError(f"{method} {path}: {status} {reply}")
    return reply


def clustered(n, dim, seed, clusters=16):
    rng = random.Random(seed)
    centers = [[rng.uniform(-1, 1) for _ in range(dim)] for _ in range(clusters)]
    out = []
    for _ in range(n):
        c = centers[rng.randrange(clusters)]
        out.append([x + rng.gauss(0, 0.1) for x in c])
    return out


def l2(a, b):
    return sum((x - y) * (x - y) for x, y in zip(a, b))


def brute_force(rows, query, k, keep=lambda r: True):
    cands = sorted((l2(r["vector"], query), r["id"]) for r in rows if keep(r))
    return [i for _, i in cands[:k]]


class ServerTestCase(unittest.TestCase):
    """One `vlake serve` for the whole class; self.v is its vector API endpoint."""

    @classmethod
    def setUpClass(cls):
        cls.server = VlakeServer().start()
        cls.v = cls.server.vector_endpoint

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()


class VectorDbTest(ServerTestCase):
    DIM = 16

    def create(self, name, **extra):
        body = {"name": name, "dim": self.DIM, "metric": "L2",
                "fields": [{"name": "price", "type": "double"}, {"name": "qty", "type": "int64"},
                           {"name": "ok", "type": "bool"}, {"name": "color", "type": "varchar"}]}
        body.update(extra)
        ok(self.v, "POST", "/v1/collections", body)

    def make_rows(self, n, seed, id_start=0):
        rng = random.Random(seed)
        vecs = clustered(n, self.DIM, seed)
        return [{"id": id_start + i, "vector": vecs[i], "price": round(rng.uniform(0, 100), 2),
                 "qty": rng.randrange(0, 50), "ok": rng.random() < 0.5,
                 "color": rng.choice(["red", "green", "blue", "black"])} for i in range(n)]

    def test_lifecycle_and_bad_requests(self):
        self.create("life")
        self.assertIn("life", ok(self.v, "GET", "/v1/collections")["collections"])
        status, reply = call(self.v, "POST", "/v1/collections",
                             {"name": "life", "dim": 4})
        self.assertEqual(status, 409, reply)
        for bad in [{"name": "9x", "dim": 4}, {"name": "x", "dim": 0}, {"name": "x", "dim": 40000},
                    {"name": "x", "dim": 4, "metric": "HAMMING"},
                    {"name": "x", "dim": 4, "fields": [{"name": "a", "type": "blob"}]}]:
            status, reply = call(self.v, "POST", "/v1/collections", bad)
            self.assertEqual(status, 400, (bad, reply))
            self.assertEqual(reply["error"]["code"], "InvalidArgument")
        row = self.make_rows(1, 1)[0]
        cases = [
            ({"rows": [dict(row, vector=row["vector"][:-1])]}, "dimension"),
            ({"rows": [dict(row, colour="x")]}, "unknown field"),
            ({"rows": [{k: v for k, v in row.items() if k != "price"}]}, "missing field"),
            ({"rows": [dict(row, qty="many")]}, "integer"),
            ({"rows": [dict(row, vector=[1e39] * self.DIM)]}, "finite"),
        ]
        for body, words in cases:
            status, reply = call(self.v, "POST", "/v1/collections/life/insert", body)
            self.assertEqual(status, 400, reply)
            self.assertIn(words, reply["error"]["message"])
        # NaN is not JSON: the parser names the problem.
        req = urllib.request.Request(self.v + "/v1/collections/life/insert", method="POST",
                                     data=b'{"rows":[{"id":1,"vector":[NaN]}]}',
                                     headers={"Authorization": bearer()})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        self.assertEqual(e.exception.code, 400)
        self.assertIn("NaN", json.loads(e.exception.read())["error"]["message"])
        q = [0.0] * self.DIM
        for body, words in [({"vectors": [q[:-1]], "k": 3}, "dimension"),
                            ({"vectors": [q], "k": 3, "filter": "price <"}, "filter"),
                            ({"vectors": [q], "k": 3, "filter": "colour == 1"}, "unknown field"),
                            ({"vectors": [q], "k": 0}, "k must be"),
                            ({"vectors": [q], "k": 3, "params": {"nprobe": -1}}, "nprobe"),
                            ({"vectors": [q], "k": 3, "output_fields": ["nope"]}, "nope")]:
            status, reply = call(self.v, "POST", "/v1/collections/life/search", body)
            self.assertEqual(status, 400, (body, reply))
            self.assertIn(words, reply["error"]["message"])
        status, reply = call(self.v, "POST", "/v1/collections/nosuch/search",
                             {"vectors": [q], "k": 1})
        self.assertEqual(status, 404, reply)
        status, reply = call(self.v, "POST", "/v1/collections/life/index", {"type": "ANNOY"})
        self.assertEqual(status, 400, reply)
        ok(self.v, "DELETE", "/v1/collections/life")
        self.assertNotIn("life", ok(self.v, "GET", "/v1/collections")["collections"])

    def test_search_filters_and_indexes_match_brute_force(self):
        self.create("ref", segment_max_rows=700)
        rows = self.make_rows(2000, 7)
        for i in range(0, len(rows), 500):
            ok(self.v, "POST", "/v1/collections/ref/insert", {"rows": rows[i:i + 500]})
        queries = clustered(20, self.DIM, 99)
        filters = [
            ("", lambda r: True),
            ('color == "red" and price < 50', lambda r: r["color"] == "red" and r["price"] < 50),
            ("not (qty >= 10 or ok)", lambda r: not (r["qty"] >= 10 or r["ok"])),
            ('color in ["blue", "black"] and qty != 3',
             lambda r: r["color"] in ("blue", "black") and r["qty"] != 3),
            ("id < 40", lambda r: r["id"] < 40),  # selective: exact fallback
        ]

        def check(label, params=None, min_recall=1.0):
            total, hit = 0, 0
            for expr, keep in filters:
                for q in queries:
                    body = {"vectors": [q], "k": 10, "filter": expr,
                            "output_fields": ["color", "price", "qty", "ok"]}
                    if params:
                        body["params"] = params
                    got = ok(self.v, "POST", "/v1/collections/ref/search", body)["results"][0]
                    want = brute_force(rows, q, 10, keep)
                    for h in got:
                        r = rows[h["id"]]
                        self.assertTrue(keep(r), (label, expr, h))
                        self.assertEqual(h["fields"]["color"], r["color"])
                        if label not in ("IVF_SQ8", "IVF_PQ"):  # quantized: approximate
                            self.assertAlmostEqual(h["distance"], l2(r["vector"], q), places=3)
                    total += len(want)
                    hit += len(set(want) & {h["id"] for h in got})
            recall = hit / total
            self.assertGreaterEqual(recall, min_recall, label)

        check("growing only")
        ok(self.v, "POST", "/v1/collections/ref/flush")
        info = ok(self.v, "GET", "/v1/collections/ref")
        # The background flusher may seal a full buffer before the explicit flush does.
        self.assertGreaterEqual(len(info["segments"]), 3)
        self.assertTrue(all(s["rows"] <= 700 for s in info["segments"]), info)
        self.assertEqual(sum(s["rows"] for s in info["segments"]), 2000)
        self.assertEqual(info["rows"], 2000)
        self.assertEqual(info["growing_rows"], 0)
        check("sealed, no index")
        for spec, params, floor in [({"type": "FLAT"}, None, 1.0),
                                    ({"type": "IVF_FLAT", "params": {"nlist": 8}},
                                     {"nprobe": 8}, 1.0),
                                    ({"type": "IVF_SQ8", "params": {"nlist": 8}},
                                     {"nprobe": 8}, 0.9),
                                    ({"type": "IVF_PQ", "params": {"nlist": 8, "m": 4}},
                                     {"nprobe": 8}, 0.4),
                                    ({"type": "HNSW", "params": {"M": 16}}, {"ef": 128}, 0.95)]:
            job = ok(self.v, "POST", "/v1/collections/ref/index", dict(spec, wait=True))
            self.assertEqual(job["state"], "done", job)
            self.assertEqual(job["segments_done"], len(info["segments"]))
            for s in job["segments"]:
                for stage in ("fetch_s", "decode_s", "train_s", "add_s", "serialize_s",
                              "upload_s"):
                    self.assertGreaterEqual(s[stage], 0)
            self.assertGreater(job["peak_rss_bytes"], 0)
            check(spec["type"], params, floor)
        # Range search: only results inside the radius, and all of them up to k.
        q = queries[0]
        want = sorted(l2(r["vector"], q) for r in rows)
        radius = want[5] + 1e-4
        got = ok(self.v, "POST", "/v1/collections/ref/search",
                 {"vectors": [q], "k": 50, "params": {"radius": radius, "ef": 256}})
        dists = [h["distance"] for h in got["results"][0]]
        self.assertTrue(all(d < radius for d in dists), dists)
        self.assertEqual(len(dists), 6)
        # Batch search returns one list per query, best first.
        got = ok(self.v, "POST", "/v1/collections/ref/search", {"vectors": queries, "k": 5})
        self.assertEqual(len(got["results"]), len(queries))
        for hits in got["results"]:
            self.assertEqual([h["distance"] for h in hits], sorted(h["distance"] for h in hits))

    def test_deletes_never_come_back(self):
        self.create("del", segment_max_rows=300)
        rows = self.make_rows(900, 3)
        ok(self.v, "POST", "/v1/collections/del/insert", {"rows": rows[:600]})
        ok(self.v, "POST", "/v1/collections/del/flush")
        ok(self.v, "POST", "/v1/collections/del/insert", {"rows": rows[600:]})
        gone = set(range(0, 900, 7))
        r = ok(self.v, "POST", "/v1/collections/del/delete", {"ids": sorted(gone)})
        self.assertEqual(r["delete_count"], len(gone))
        r = ok(self.v, "POST", "/v1/collections/del/delete", {"filter": 'color == "green"'})
        gone |= {x["id"] for x in rows if x["color"] == "green"}
        self.assertEqual(r["delete_count"], len(gone) - len(set(range(0, 900, 7))))

        def check(stage):
            for q in [x["vector"] for x in rows[:30]]:
                hits = ok(self.v, "POST", "/v1/collections/del/search",
                          {"vectors": [q], "k": 50})["results"][0]
                self.assertFalse({h["id"] for h in hits} & gone, stage)
                self.assertEqual([h["id"] for h in hits][:10],
                                 brute_force([x for x in rows if x["id"] not in gone], q, 10),
                                 stage)
            alive = ok(self.v, "POST", "/v1/collections/del/query",
                       {"filter": "id >= 0", "limit": 10000})["rows"]
            self.assertEqual({x["id"] for x in alive}, set(range(900)) - gone, stage)
            self.assertEqual(ok(self.v, "GET", "/v1/collections/del")["rows"], 900 - len(gone))

        check("before flush")
        ok(self.v, "POST", "/v1/collections/del/flush")
        check("after flush")
        ok(self.v, "POST", "/v1/collections/del/index",
           {"type": "HNSW", "params": {"M": 16}, "wait": True})
        check("with index")
        # Re-inserting a deleted key brings back only the new row.
        back = dict(rows[7], price=123.0)
        ok(self.v, "POST", "/v1/collections/del/insert", {"rows": [back]})
        got = ok(self.v, "POST", "/v1/collections/del/query",
                 {"ids": [7], "output_fields": ["price"]})["rows"]
        self.assertEqual(got, [{"id": 7, "price": 123.0}])
        ok(self.v, "POST", "/v1/collections/del/delete", {"ids": [7]})
        r = ok(self.v, "POST", "/v1/collections/del/compact", {})
        self.assertGreaterEqual(r["segments_rewritten"], 1)
        info = ok(self.v, "GET", "/v1/collections/del")
        self.assertEqual(sum(s["deleted"] for s in info["segments"]), 0)
        check("after compaction")
        # Compaction dropped the rewritten segments' indexes; the job rebuilt them.
        deadline = time.time() + 60
        while time.time() < deadline:
            info = ok(self.v, "GET", "/v1/collections/del")
            if all(s["index"] for s in info["segments"]):
                break
            time.sleep(0.2)
        self.assertTrue(all(s["index"] for s in info["segments"]), info)
        check("after compaction and reindex")

    def test_index_job_fetches_segments_over_the_direct_path(self):
        # The embedded engine reads segments of 1 MiB and more into a data-plane region.
        self.create("big")
        rows = self.make_rows(20000, 21)
        for i in range(0, len(rows), 5000):
            ok(self.v, "POST", "/v1/collections/big/insert", {"rows": rows[i:i + 5000]})
        job = ok(self.v, "POST", "/v1/collections/big/index",
                 {"type": "IVF_FLAT", "params": {"nlist": 32}, "wait": True})
        self.assertEqual(job["state"], "done", job)
        self.assertGreater(job["segments"][0]["segment_bytes"], 1 << 20)
        self.assertTrue(job["segments"][0]["fetched_direct"], job)
        q = rows[123]["vector"]
        hits = ok(self.v, "POST", "/v1/collections/big/search",
                  {"vectors": [q], "k": 1, "params": {"nprobe": 32}})["results"][0]
        self.assertEqual(hits[0]["id"], 123)

    def test_gpu_index_build_without_a_gpu_is_refused_cleanly(self):
        # This node (CI, the developer machine) has no GPU: the build is refused before the
        # collection's index spec changes; bad devices and GPU-less types are 400 / 501.
        self.create("nogpu")
        ok(self.v, "POST", "/v1/collections/nogpu/insert", {"rows": self.make_rows(300, 41)})
        status, reply = call(self.v, "POST", "/v1/collections/nogpu/index",
                             {"type": "IVF_PQ", "params": {"nlist": 4, "m": 4},
                              "device": "gpu", "wait": True})
        if status == 202 or status == 200:
            self.skipTest("this node has a GPU")
        self.assertEqual(status, 503, reply)
        self.assertIn("no GPU", reply["error"]["message"])
        status, reply = call(self.v, "POST", "/v1/collections/nogpu/index",
                             {"type": "IVF_SQ8", "params": {"nlist": 4}, "device": "gpu"})
        self.assertEqual(status, 501, reply)
        status, reply = call(self.v, "POST", "/v1/collections/nogpu/index",
                             {"type": "IVF_FLAT", "device": "tpu"})
        self.assertEqual(status, 400, reply)
        self.assertEqual(ok(self.v, "GET", "/v1/collections/nogpu")["index_spec"], "")
        # The CPU build still works, and its job says where it ran.
        job = ok(self.v, "POST", "/v1/collections/nogpu/index",
                 {"type": "IVF_FLAT", "params": {"nlist": 4}, "device": "cpu", "wait": True})
        self.assertEqual(job["state"], "done", job)
        self.assertEqual(job["device"], "cpu")
        # The CLI says the same.
        cli = subprocess.run([VLAKE_BIN, "index", "build", "nogpu", "--type", "IVF_FLAT",
                              "--param", "nlist=4", "--device", "gpu", "--endpoint", self.v],
                             capture_output=True, text=True, timeout=60, env=CLI_ENV)
        self.assertNotEqual(cli.returncode, 0)
        self.assertIn("no GPU", cli.stderr + cli.stdout)

    def test_segments_too_small_to_train_stay_exact(self):
        # Regression: a flush remainder of 100 rows failed the whole IVF_PQ job (needs 256).
        self.create("small", segment_max_rows=300)
        rows = self.make_rows(700, 31)
        ok(self.v, "POST", "/v1/collections/small/insert", {"rows": rows})
        job = ok(self.v, "POST", "/v1/collections/small/index",
                 {"type": "IVF_PQ", "params": {"nlist": 4, "m": 4}, "wait": True})
        self.assertEqual(job["state"], "done", job)
        skipped = [s for s in job["segments"] if s["skipped"]]
        self.assertTrue(skipped and all(s["rows"] < 256 for s in skipped), job)
        self.assertIn("too few rows", skipped[0]["skipped"])
        info = ok(self.v, "GET", "/v1/collections/small")
        self.assertTrue(any(s["index"].startswith("exact") for s in info["segments"]), info)
        small = [s for s in info["segments"] if s["index"].startswith("exact")][0]
        # Its rows are found exactly (a query equal to a stored vector finds it first).
        member = [r for r in rows if r["id"] >= 700 - small["rows"]][0]
        hits = ok(self.v, "POST", "/v1/collections/small/search",
                  {"vectors": [member["vector"]], "k": 1, "params": {"nprobe": 4}})
        self.assertEqual(hits["results"][0][0]["id"], member["id"])

    def test_concurrent_inserts_and_searches(self):
        self.create("conc")
        errors = []
        inserted = []

        def writer(w):
            try:
                for b in range(10):
                    base = w * 100000 + b * 50
                    ok(self.v, "POST", "/v1/collections/conc/insert",
                       {"rows": self.make_rows(50, base, id_start=base)})
                    inserted.append(50)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        def reader():
            try:
                for _ in range(40):
                    status, reply = call(self.v, "POST", "/v1/collections/conc/search",
                                         {"vectors": clustered(4, self.DIM, 5), "k": 10,
                                          "filter": "qty < 25"})
                    if status != 200:
                        raise AssertionError(reply)
                    for hits in reply["results"]:
                        self.assertLessEqual(len(hits), 10)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        flusher = threading.Thread(
            target=lambda: [call(self.v, "POST", "/v1/collections/conc/flush", {}) or
                            time.sleep(0.05) for _ in range(10)])
        threads.append(flusher)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(ok(self.v, "GET", "/v1/collections/conc")["rows"], sum(inserted))


class VectorDbDurabilityTest(unittest.TestCase):
    DIM = 8

    def test_acknowledged_inserts_and_deletes_survive_kill_9(self):
        server = VlakeServer().start()
        try:
            v = server.vector_endpoint
            ok(v, "POST", "/v1/collections",
               {"name": "dur", "dim": self.DIM, "auto_id": True, "segment_max_rows": 400,
                "fields": [{"name": "n", "type": "int64"}]})
            acked, deleted = {}, set()
            stop = threading.Event()

            def writer():
                i = 0
                while not stop.is_set():
                    rows = [{"vector": [float(i + j)] * self.DIM, "n": i + j} for j in range(25)]
                    try:
                        status, reply = call(v, "POST", "/v1/collections/dur/insert",
                                             {"rows": rows}, timeout=10)
                    except Exception:  # noqa: BLE001  (the server died mid-request)
                        return
                    if status == 200:
                        for j, pk in enumerate(reply["ids"]):
                            acked[pk] = i + j
                    i += 25

            t = threading.Thread(target=writer)
            t.start()
            time.sleep(1.0)
            ok(v, "POST", "/v1/collections/dur/flush")  # some rows sealed, some in the WAL
            some = sorted(acked)[:40:3]
            ok(v, "POST", "/v1/collections/dur/delete", {"ids": some})
            deleted.update(some)
            time.sleep(0.5)
            server.kill()  # kill -9 while the writer is mid-stream
            stop.set()
            t.join()
            self.assertGreater(len(acked), 100)

            server.start()
            v = server.vector_endpoint
            rows = ok(v, "POST", "/v1/collections/dur/query",
                      {"filter": "n >= 0", "limit": 1000000, "output_fields": ["n"]})["rows"]
            got = {r["id"]: r["n"] for r in rows}
            for pk, n in acked.items():
                if pk in deleted:
                    self.assertNotIn(pk, got)
                else:
                    self.assertEqual(got.get(pk), n, pk)
            # Unacknowledged rows may exist (logged, then killed before the reply), but never
            # torn: every row is whole and ids stay unique after restart.
            new = ok(v, "POST", "/v1/collections/dur/insert",
                     {"rows": [{"vector": [0.5] * self.DIM, "n": -1}]})["ids"][0]
            self.assertNotIn(new, got)
            hits = ok(v, "POST", "/v1/collections/dur/search",
                      {"vectors": [[3.0] * self.DIM], "k": 5})["results"][0]
            self.assertFalse({h["id"] for h in hits} & deleted)
        finally:
            server.stop()
            server.cleanup()


class VectorDbStoreOutageTest(unittest.TestCase):
    """`vlake vectordb` against a separate `vlake storage` process that is killed and comes back
    while inserts, flushes and index builds run: the vector database stays up, refuses what it
    cannot make durable, retries its flushes, and keeps every acknowledged row."""

    DIM = 8

    def start_vectordb(self, storage, tmp):
        env = dict(os.environ, VLAKE_ACCESS_KEY=USERS[0]["access_key"],
                   VLAKE_SECRET_KEY=USERS[0]["secret_key"])
        log = open(os.path.join(tmp, "vectordb.log"), "ab")
        proc = subprocess.Popen([VLAKE_BIN, "vectordb", "--s3", storage.endpoint, "--listen",
                                 "127.0.0.1:0", "--no-direct"],
                                stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        for _ in range(20):
            line = proc.stdout.readline().decode()
            if "endpoint:" in line:
                proc.stdout.close()
                return proc, line.split()[1]
        proc.kill()
        raise AssertionError("vlake vectordb did not start")

    def vector_of(self, i):
        return [float(i % 97) + j * 0.25 for j in range(self.DIM)]

    def test_storage_goes_away_and_comes_back(self):
        storage = VlakeServer(role="storage", extra_args=["--no-direct"]).start()
        tmp = tempfile.mkdtemp(prefix="vlake-outage-")
        proc, v = self.start_vectordb(storage, tmp)
        try:
            ok(v, "POST", "/v1/collections",
               {"name": "out", "dim": self.DIM, "segment_max_rows": 300})
            job = ok(v, "POST", "/v1/collections/out/index",
                     {"type": "IVF_FLAT", "params": {"nlist": 4}, "wait": True})
            self.assertEqual(job["state"], "done", job)
            acked, refused = set(), [0]
            stop = threading.Event()

            def writer():
                i = 0
                while not stop.is_set():
                    rows = [{"id": i + j, "vector": self.vector_of(i + j)} for j in range(20)]
                    try:
                        status, _ = call(v, "POST", "/v1/collections/out/insert", {"rows": rows},
                                         timeout=30)
                    except Exception:  # noqa: BLE001  (a reply lost: not acknowledged)
                        status = 0
                    if status == 200:
                        acked.update(r["id"] for r in rows)
                    else:
                        refused[0] += 1
                    i += 20

            def flusher():
                while not stop.is_set():
                    try:
                        call(v, "POST", "/v1/collections/out/flush", timeout=30)
                    except Exception:  # noqa: BLE001
                        pass
                    time.sleep(0.2)

            threads = [threading.Thread(target=writer), threading.Thread(target=flusher)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            before = len(acked)
            storage.kill()  # kill -9: the object store is gone mid-request
            time.sleep(1.5)
            # While it is away: writes are refused, an index build is refused, nothing hangs.
            status, reply = call(v, "POST", "/v1/collections/out/index",
                                 {"type": "IVF_FLAT", "params": {"nlist": 4}}, timeout=60)
            self.assertGreaterEqual(status, 500, reply)
            self.assertIsNone(proc.poll(), "vlake vectordb died while the store was away")
            storage.start(port=storage.port)
            time.sleep(2.0)
            stop.set()
            for t in threads:
                t.join()
            self.assertGreater(before, 0)
            self.assertGreater(len(acked), before, "no insert succeeded after the store came back")
            self.assertGreater(refused[0], 0, "the outage refused no insert")
            # The flush that failed is retried (here by request) and succeeds now.
            deadline = time.time() + 60
            while True:
                status, reply = call(v, "POST", "/v1/collections/out/flush", timeout=60)
                if status == 200 or time.time() > deadline:
                    break
                time.sleep(0.5)
            self.assertEqual(status, 200, reply)
            job = ok(v, "POST", "/v1/collections/out/index",
                     {"type": "IVF_FLAT", "params": {"nlist": 4}, "wait": True})
            self.assertEqual(job["state"], "done", job)

            def check(label):
                rows = ok(v, "POST", "/v1/collections/out/query",
                          {"filter": "id >= 0", "limit": 1000000,
                           "output_fields": ["vector"]})["rows"]
                ids = [r["id"] for r in rows]
                self.assertEqual(len(ids), len(set(ids)), label + ": a row appears twice")
                got = {r["id"]: r["vector"] for r in rows}
                lost = acked - set(got)
                self.assertFalse(lost, f"{label}: acknowledged rows lost: {sorted(lost)[:10]}")
                for i in acked:
                    self.assertEqual(got[i], self.vector_of(i), label)

            check("after the outage")
            # And from the store alone: a restart of the vector database recovers the same.
            proc.terminate()
            proc.wait(timeout=60)
            proc, v = self.start_vectordb(storage, tmp)
            check("after a restart")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            storage.stop()
            storage.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


class VectorApiAuthTest(ServerTestCase):
    """Every vector API call is authenticated with the storage node's users; collections and
    jobs belong to their creator; the embedded database's bucket belongs to nobody's S3 view."""

    def test_credentials_are_required_and_checked(self):
        # Liveness stays open; everything else needs credentials.
        self.assertEqual(call(self.v, "GET", "/v1/health", authorization="")[0], 200)
        wrong = "Bearer %s:%s" % (USERS[0]["access_key"], USERS[1]["secret_key"])
        unknown = "Bearer AKIDNOSUCHUSER000000:" + USERS[0]["secret_key"]
        for auth in ["", wrong, unknown, "Bearer " + USERS[0]["access_key"], "Basic YTpi",
                     "Bearer :", "Bearer"]:
            for method, path, body in [("GET", "/v1/collections", None),
                                       ("POST", "/v1/collections", {"name": "x", "dim": 4}),
                                       ("GET", "/metrics", None),
                                       ("GET", "/v1/jobs/job-000001", None)]:
                req = urllib.request.Request(self.v + path, method=method,
                                             data=None if body is None else json.dumps(body).encode())
                if auth:
                    req.add_header("Authorization", auth)
                with self.assertRaises(urllib.error.HTTPError, msg=(auth, path)) as e:
                    urllib.request.urlopen(req, timeout=30)
                self.assertEqual(e.exception.code, 401, (auth, path))
                self.assertIn("Bearer", e.exception.headers.get("WWW-Authenticate", ""))
                self.assertEqual(json.loads(e.exception.read())["error"]["code"],
                                 "Unauthenticated")
        # Nothing was created by the refused requests.
        self.assertNotIn("x", ok(self.v, "GET", "/v1/collections")["collections"])

    def test_collections_belong_to_their_creator(self):
        ok(self.v, "POST", "/v1/collections", {"name": "alices", "dim": 4})
        ok(self.v, "POST", "/v1/collections/alices/insert",
           {"rows": [{"id": 1, "vector": [1, 2, 3, 4]}]})
        job = ok(self.v, "POST", "/v1/collections/alices/index",
                 {"type": "FLAT", "wait": True})["id"]
        bob = bearer(1)
        self.assertNotIn("alices",
                         ok_as(self.v, bob, "GET", "/v1/collections")["collections"])
        for method, path, body in [
                ("GET", "/v1/collections/alices", None),
                ("DELETE", "/v1/collections/alices", None),
                ("POST", "/v1/collections/alices/insert",
                 {"rows": [{"id": 2, "vector": [1, 2, 3, 4]}]}),
                ("POST", "/v1/collections/alices/search", {"vectors": [[1, 2, 3, 4]], "k": 1}),
                ("POST", "/v1/collections/alices/query", {"ids": [1]}),
                ("POST", "/v1/collections/alices/delete", {"ids": [1]}),
                ("POST", "/v1/collections/alices/flush", {}),
                ("POST", "/v1/collections/alices/index", {"type": "FLAT"}),
                ("GET", "/v1/jobs/" + job, None)]:
            status, reply = call(self.v, method, path, body, authorization=bob)
            self.assertEqual(status, 403, (method, path, reply))
            self.assertEqual(reply["error"]["code"], "AccessDenied")
        # Bob's own collection of the same kind works, and Alice cannot see it either.
        ok_as(self.v, bob, "POST", "/v1/collections", {"name": "bobs", "dim": 4})
        self.assertEqual(call(self.v, "GET", "/v1/collections/bobs")[0], 403)
        # Alice's data is untouched by all of Bob's attempts.
        got = ok(self.v, "POST", "/v1/collections/alices/query", {"ids": [1, 2]})
        self.assertEqual([r["id"] for r in got["rows"]], [1])
        ok(self.v, "DELETE", "/v1/collections/alices")
        ok_as(self.v, bob, "DELETE", "/v1/collections/bobs")

    def test_sigv4_signed_requests_and_their_body_hash(self):
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        def signed(method, path, body, tamper=False, user=0):
            data = json.dumps(body).encode()
            r = AWSRequest(method=method, url=self.v + path, data=data,
                           headers={"Content-Type": "application/json"})
            S3SigV4Auth(Credentials(USERS[user]["access_key"], USERS[user]["secret_key"]),
                        "s3", "us-east-1").add_auth(r)
            if tamper:
                data = data.replace(b"sig4", b"sig5")
            req = urllib.request.Request(self.v + path, data=data, method=method,
                                         headers=dict(r.headers.items()))
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        status, reply = signed("POST", "/v1/collections", {"name": "sig4", "dim": 4})
        self.assertEqual(status, 201, reply)
        # A body changed after signing is refused (the signature covered its hash).
        status, reply = signed("POST", "/v1/collections", {"name": "sig4x", "dim": 4},
                               tamper=True)
        self.assertEqual(status, 400, reply)
        self.assertEqual(reply["error"]["code"], "XAmzContentSHA256Mismatch")
        self.assertNotIn("sig5x", ok(self.v, "GET", "/v1/collections")["collections"])
        # A signature by the wrong secret is a 401.
        req = urllib.request.Request(self.v + "/v1/collections", method="GET", headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=%s/20260101/us-east-1/s3/aws4_request,"
                             " SignedHeaders=host;x-amz-date, Signature=%s"
                             % (USERS[0]["access_key"], "0" * 64),
            "x-amz-date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        self.assertEqual(e.exception.code, 401)
        ok(self.v, "DELETE", "/v1/collections/sig4")

    def test_embedded_bucket_is_nobodys_in_s3(self):
        ok(self.v, "POST", "/v1/collections", {"name": "hidden", "dim": 4})
        ok(self.v, "POST", "/v1/collections/hidden/insert",
           {"rows": [{"id": 1, "vector": [1, 2, 3, 4]}]})
        from botocore.exceptions import ClientError
        for user in (0, 1):
            s3 = boto3_client(self.server, user)
            names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
            self.assertNotIn("vlake-vectordb", names)
            for op in (lambda: s3.delete_bucket(Bucket="vlake-vectordb"),
                       lambda: s3.list_objects_v2(Bucket="vlake-vectordb"),
                       lambda: s3.get_object(Bucket="vlake-vectordb", Key="hidden/manifest.json"),
                       lambda: s3.delete_object(Bucket="vlake-vectordb",
                                                Key="hidden/manifest.json")):
                with self.assertRaises(ClientError) as e:
                    op()
                self.assertEqual(e.exception.response["Error"]["Code"], "AccessDenied")
        self.assertEqual(ok(self.v, "GET", "/v1/collections/hidden")["rows"], 1)
        ok(self.v, "DELETE", "/v1/collections/hidden")


class VectorBucketUpgradeTest(unittest.TestCase):
    def test_bucket_of_an_older_data_folder_moves_to_the_internal_identity(self):
        # Before the internal identity, the embedded database wrote as the first user: such a
        # bucket is handed over at start, and its collections stay.
        server = VlakeServer(extra_args=["--no-vectordb"]).start()
        try:
            s3 = boto3_client(server, 0)
            s3.create_bucket(Bucket="vlake-vectordb")
            server.stop()
            server.extra_args = []
            server.start()  # vector database on now: the bucket is claimed
            self.assertNotIn("vlake-vectordb",
                             [b["Name"] for b in boto3_client(server, 0).list_buckets()["Buckets"]])
            ok(server.vector_endpoint, "POST", "/v1/collections", {"name": "kept", "dim": 4})
        finally:
            server.stop()
            server.cleanup()


def write_fvecs(path, vecs):
    with open(path, "wb") as f:
        for v in vecs:
            f.write(struct.pack("<i", len(v)))
            f.write(struct.pack(f"<{len(v)}f", *v))


class VectorCliAndStandaloneTest(unittest.TestCase):
    def run_cli(self, endpoint, *args):
        p = subprocess.run([VLAKE_BIN, *args, "--endpoint", endpoint], capture_output=True,
                           text=True, timeout=300, env=CLI_ENV)
        if p.returncode != 0:
            log = glob.glob(os.path.join(tempfile.gettempdir(), "vlake-vdb-*", "vectordb.log"))
            raise AssertionError(f"vlake {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}\n" + "".join(open(f).read()[-2000:] for f in log))
        return p.stdout

    def test_cli_against_standalone_vectordb_over_plain_http(self):
        # A storage node without the vector database, and `vlake vectordb` against it with
        # the direct path off: the engine over any S3 endpoint.
        storage = VlakeServer(extra_args=["--no-vectordb", "--no-direct"]).start()
        tmp = tempfile.mkdtemp(prefix="vlake-vdb-")
        env = dict(os.environ, VLAKE_ACCESS_KEY=USERS[0]["access_key"],
                   VLAKE_SECRET_KEY=USERS[0]["secret_key"])
        proc = subprocess.Popen([VLAKE_BIN, "vectordb", "--s3", storage.endpoint, "--listen",
                                 "127.0.0.1:0", "--no-direct", "--prefix", "t1/"],
                                stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "vectordb.log"), "wb"), env=env)
        try:
            endpoint = None
            for _ in range(20):
                line = proc.stdout.readline().decode()
                if "endpoint:" in line:
                    endpoint = line.split()[1]
                    break
            self.assertIsNotNone(endpoint)
            vecs = clustered(3000, 24, 11)
            path = os.path.join(tmp, "base.fvecs")
            write_fvecs(path, vecs)
            self.run_cli(endpoint, "collection", "create", "cli", "--dim", "24")
            out = self.run_cli(endpoint, "insert", "cli", "--from", path, "--batch-rows", "700",
                               "--flush")
            self.assertIn("inserted 3000 rows", out)
            out = self.run_cli(endpoint, "index", "build", "cli", "--type", "IVF_FLAT",
                               "--param", "nlist=16")
            self.assertIn("done", out)
            self.assertIn("train", out)
            out = self.run_cli(endpoint, "search", "cli", "--queries", path, "--nq", "3", "-k",
                               "4", "--nprobe", "16", "--json")
            results = json.loads(out)["results"]
            self.assertEqual([hits[0]["id"] for hits in results], [0, 1, 2])
            desc = json.loads(self.run_cli(endpoint, "collection", "describe", "cli"))
            self.assertEqual(desc["rows"], 3000)
            self.assertIn("cli", self.run_cli(endpoint, "collection", "list"))
            # Bad input: a file of the wrong dimension is refused before anything is sent.
            write_fvecs(os.path.join(tmp, "bad.fvecs"), clustered(5, 7, 1))
            p = subprocess.run([VLAKE_BIN, "insert", "cli", "--from",
                                os.path.join(tmp, "bad.fvecs"), "--endpoint", endpoint],
                               capture_output=True, text=True, timeout=60, env=CLI_ENV)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("dimension", p.stderr)
            self.run_cli(endpoint, "collection", "drop", "cli")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()
            storage.stop()
            storage.cleanup()


if __name__ == "__main__":
    unittest.main()
