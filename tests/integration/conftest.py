"""Shared fixtures for the integration tests: peer servers (moto, kinesalite, kinesisd) started on loopback on free
ports, stopped by PID at the end, and boto3 clients pointed at them.

Environment: KN_BUILD_DIR names the CMake build folder whose `kinesis` and `kinesisd` the tests run (default
../../build). Tests run under the python that has boto3 and moto (the pyenv one); pytest comes from .deps/pylib.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import boto3
import botocore.config
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("KN_BUILD_DIR", os.path.join(ROOT, "build")))
NODE_MODULES = os.path.join(ROOT, ".deps", "node", "node_modules")
KINESIS_BIN = os.path.join(BUILD, "cli", "kinesis")
KINESISD_BIN = os.path.join(BUILD, "server", "kinesisd")

# Dummy credentials: the peers accept any; kinesisd in anonymous mode accepts any well-formed signature.
TEST_AKID = "AKIDEXAMPLETEST00001"
TEST_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


class Server:
    """A server process we started; stop() ends it by its PID only."""

    def __init__(self, name, cmd, port, env=None, cwd=None, log_path=None):
        self.name, self.cmd, self.port = name, cmd, port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log_path = log_path or tempfile.mktemp(prefix=f"kn-{name}-", suffix=".log")
        self.env, self.cwd = env, cwd
        self.proc = None

    def start(self, timeout=30.0):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd,
                                     start_new_session=True)
        wait_port(self.port, self.proc, timeout)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None


def boto_kinesis(endpoint, **kw):
    cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=TEST_AKID,
                        aws_secret_access_key=TEST_SECRET, config=cfg, **kw)


def wait_active(client, name, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if d["StreamStatus"] == "ACTIVE":
            return d
        time.sleep(0.05)
    raise AssertionError(f"stream {name} not ACTIVE within {timeout}s")


def start_moto():
    port = free_port()
    exe = shutil.which("moto_server")
    if not exe:
        pytest.fail("moto_server is not on PATH (it ships with the pyenv python)")
    return Server("moto", [exe, "-H", "127.0.0.1", "-p", str(port)], port).start()


def start_kinesalite():
    port = free_port()
    cli = os.path.join(NODE_MODULES, "kinesalite", "cli.js")
    if not os.path.exists(cli):
        pytest.fail("kinesalite is not installed: run scripts/install-deps.sh test")
    # Default delays are 500 ms per status change; make them short so tests need no sleeps.
    return Server("kinesalite", ["node", cli, "--port", str(port), "--createStreamMs", "0", "--deleteStreamMs", "0",
                                 "--updateStreamMs", "0", "--shardLimit", "100"], port).start()


def start_kinesisd(data_dir=None, extra=()):
    port = free_port()
    if not os.path.exists(KINESISD_BIN):
        pytest.fail(f"{KINESISD_BIN} is missing: build first")
    args = [KINESISD_BIN, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--data-dir", data_dir] if data_dir else ["--in-memory"]
    return Server("kinesisd", args + list(extra), port).start()


@pytest.fixture(scope="session")
def moto():
    s = start_moto()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def kinesalite():
    s = start_kinesalite()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def kinesisd(tmp_path_factory):
    s = start_kinesisd(str(tmp_path_factory.mktemp("kinesisd-data")))
    yield s
    s.stop()


@pytest.fixture(params=["moto", "kinesalite"])
def peer(request):
    """Each test using this runs once against every peer server nobody on this team wrote."""
    return request.getfixturevalue(request.param)


def unique_name(prefix="s"):
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"


def cli_env(endpoint=None, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": TEST_AKID, "AWS_SECRET_ACCESS_KEY": TEST_SECRET, "AWS_REGION": REGION,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(extra)
    return env
