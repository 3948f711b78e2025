"""Helpers shared by the tests that drive real S3 command-line clients (aws, s3cmd, rclone, curl)
against a vlake server: running a command with a clean environment, building and comparing
folder trees."""

import hashlib
import shutil
import os
import subprocess

MIB = 1024 * 1024

# Names that exercise URL encoding and signing: spaces, non-ASCII, reserved characters.
ODD_NAME = "file with spaces ünïcödé 日本.txt"
ODD_NAME_2 = "a+b=c&d (1).txt"


def clean_env(home, extra=None):
    """os.environ without any AWS_/RCLONE_/S3CMD settings of this machine, HOME set to `home`
    (so no ~/.aws, ~/.s3cfg or rclone.conf is read), UTF-8 forced for Python-based clients."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "RCLONE_", "S3CMD_", "BOTO_"))}
    env.update({"HOME": home, "PYTHONIOENCODING": "utf-8", "PYTHONUTF8": "1",
                "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    env.update(extra or {})
    return env


def run(cmd, env, timeout=300, check=True, cwd=None, input=None, binary=False):
    """Runs cmd (a list); returns CompletedProcess with text stdout/stderr (bytes with binary,
    where input is bytes too). With check, fails with the full output when the exit status is
    not 0."""
    text = {} if binary else {"text": True, "encoding": "utf-8", "errors": "replace"}
    proc = subprocess.run(cmd, env=env, cwd=cwd, input=input, capture_output=True,
                          timeout=timeout, **text)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd!r} exited {proc.returncode}\n--- stdout\n{proc.stdout!r:.2000}"
                             f"\n--- stderr\n{proc.stderr!r:.4000}")
    return proc


def write_s3cmd_config(path, port, access_key, secret_key, signature_v2=False):
    """An s3cmd config for a vlake server on 127.0.0.1:port (path style, plain HTTP)."""
    host = f"127.0.0.1:{port}"
    with open(path, "w") as f:
        f.write("[default]\n"
                f"access_key = {access_key}\n"
                f"secret_key = {secret_key}\n"
                f"host_base = {host}\n"
                f"host_bucket = {host}\n"
                "use_https = False\n"
                f"signature_v2 = {signature_v2}\n"
                "check_ssl_certificate = False\n"
                "bucket_location = us-east-1\n"
                "progress_meter = False\n")
    return path


def write_random(path, size, chunk=8 * MIB):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n


def make_tree(root, extra_files=None):
    """~30 small files in nested folders, two with awkward names. Returns the relative paths
    (with '/' separators) of every file written."""
    files = {}
    for i in range(10):
        files[f"top{i}.txt"] = f"top level {i}\n".encode()
        files[f"a/b/c/deep{i}.bin"] = os.urandom(100 + 37 * i)
    for i in range(8):
        files[f"a/mid{i}.dat"] = os.urandom(1000 + i)
    files[f"odd/{ODD_NAME}"] = "ünïcödé content\n".encode()
    files[f"odd/{ODD_NAME_2}"] = b"reserved characters\n"
    files["empty.txt"] = b""
    files.update(extra_files or {})
    for rel, data in files.items():
        p = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return sorted(files)


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def tree_digests(root):
    """{relative path: sha256} of every file under root."""
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root).replace(os.sep, "/")] = file_digest(p)
    return out


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def server_log_problems(server, allowed=("NotImplemented",)):
    """Lines of the server's log at level error, or warn for a 5xx, other than those naming one
    of `allowed` (clients probe features vlake does not have: bucket policy, CORS, ...).
    NotImplemented is logged twice: the error line names it, the request line says 501."""
    try:
        with open(server.log_path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    bad = []
    for line in lines:
        if "level=error" not in line and "level=warn" not in line:
            continue
        if any(a in line for a in allowed) or (
                "NotImplemented" in allowed and "status=501" in line):
            continue
        bad.append(line)
    return bad


def stop_server_and_check_log(server, tmp_dir):
    """Stops the server, removes its files and tmp_dir, and fails when its log holds errors."""
    server.stop()
    problems = server_log_problems(server)
    server.cleanup()
    shutil.rmtree(tmp_dir, ignore_errors=True)
    if problems:
        raise AssertionError("the server logged errors:\n" + "\n".join(problems[:20]))
