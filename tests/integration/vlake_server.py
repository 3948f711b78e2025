"""Starts a real vlake server for integration tests and stops it by PID.

Each server binds 127.0.0.1 on a free port (the kernel picks it: --listen 127.0.0.1:0), keeps
its data in a fresh temporary folder, and is killed at interpreter exit if a test forgot to
stop it. The binary comes from $VLAKE_BIN (set by ctest) or ./build/apps/vlake/vlake.
"""

import atexit
import functools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VLAKE_BIN = os.environ.get("VLAKE_BIN", os.path.join(REPO, "build", "apps", "vlake", "vlake"))

USERS = [
    {"access_key": "AKIDVLAKETESTALICE01", "secret_key": "alice-secret-key-0123456789abcdefghij",
     "user_id": "alice", "display_name": "Alice"},
    {"access_key": "AKIDVLAKETESTBOB0002", "secret_key": "bob-secret-key-0123456789abcdefghijkl",
     "user_id": "bob", "display_name": "Bob"},
]

# In CI (CI=true) whatever scripts/install-deps.sh --test installs must be there: a test that
# would skip for want of it fails instead.
IN_CI = os.environ.get("CI") == "true"


def missing(reason):
    """Raises what a test raises when a client or data set it needs is absent: SkipTest, or in
    CI an AssertionError."""
    if IN_CI:
        raise AssertionError("CI=true and this is missing (scripts/install-deps.sh --test "
                             "installs it): " + reason)
    raise unittest.SkipTest(reason)


def needs(available, reason):
    """Class or method decorator: run only when `available`, else missing(reason)."""
    if available:
        return lambda obj: obj

    def decorate(obj):
        if isinstance(obj, type):
            obj.setUpClass = classmethod(lambda cls: missing(reason))
            return obj
        return functools.wraps(obj)(lambda *a, **k: missing(reason))
    return decorate


_live = set()


def _kill_all():
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_kill_all)


class VlakeServer:
    """A vlake storage node on 127.0.0.1:<free port> with two users (alice, bob)."""

    def __init__(self, data_dir=None, extra_args=(), users=USERS, env=None, role="serve"):
        self.role = role  # "serve" (storage node + vector database) or "storage"
        self.owns_dir = data_dir is None
        self.root = tempfile.mkdtemp(prefix="vlake-it-")
        self.data_dir = data_dir or os.path.join(self.root, "data")
        self.users_file = os.path.join(self.root, "users.json")
        with open(self.users_file, "w") as f:
            json.dump({"users": users}, f)
        self.extra_args = list(extra_args)
        self.env = env
        self.proc = None
        self.port = None
        self.vector_port = None  # the embedded vector database's JSON API, when it runs
        self.scheme = "http"  # "https" when started with --tls-cert (read from the banner)
        self.log_path = os.path.join(self.root, "server.log")

    @property
    def endpoint(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def vector_endpoint(self):
        return f"{self.scheme}://127.0.0.1:{self.vector_port}"

    def start(self, timeout_s=20, port=0):
        """`port`: listen there (a restart on the port clients know), else on a free one."""
        # The embedded vector database gets its own free port too, so tests run in parallel.
        args = [VLAKE_BIN, self.role, "--listen", f"127.0.0.1:{port}", "--data", self.data_dir,
                "--users", self.users_file] + self.extra_args
        if self.role == "serve":
            args += ["--vector-listen", "127.0.0.1:0"]
        env = dict(os.environ)
        env.update(self.env or {})
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, env=env)
        _live.add(self.proc)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            m = re.search(r"endpoint:\s+(https?)://127\.0\.0\.1:(\d+)", line)
            if m:
                self.scheme = m.group(1)
                self.port = int(m.group(2))
            v = re.search(r"vector db:\s+https?://127\.0\.0\.1:(\d+)", line)
            if v:
                self.vector_port = int(v.group(1))
            if self.port and re.search(r"^\s+users:", line):
                # Keep draining stdout so the server never blocks on a full pipe.
                self.proc.stdout.close()
                return self
        self.kill()
        raise RuntimeError("vlake did not start; log:\n" + open(self.log_path).read())

    def stop(self, timeout_s=30):
        """Graceful stop (SIGTERM: drain, then exit). Returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _live.discard(self.proc)
        self._close_log()
        return self.proc.returncode if self.proc else None

    def _close_log(self):
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def kill(self):
        """kill -9: the crash the durability tests simulate."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        _live.discard(self.proc)
        self._close_log()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()


def boto3_client(server, user=0, **config_kwargs):
    import boto3
    from botocore.config import Config
    cfg = Config(signature_version="s3v4", retries={"max_attempts": 1},
                 s3={"addressing_style": config_kwargs.pop("addressing_style", "path")},
                 **config_kwargs)
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=USERS[user]["access_key"],
                        aws_secret_access_key=USERS[user]["secret_key"], config=cfg)
