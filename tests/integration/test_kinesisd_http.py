"""kinesisd's HTTP front door against real and hostile clients (issue 3 "Protocol", issue 5 "Hostile and malformed
input"): keep-alive and pipelining over HTTP/1.1, HTTP/2 with prior knowledge (h2c), any Host, bodies over the limit
refused before they are read, slow-loris clients cut off by the header and body timeouts, idle connections that
cannot lock others out, garbage on the wire, and a clean SIGTERM. Each hostile case ends by checking that an
ordinary boto3 client is still served.

Requests are signed for real by botocore's SigV4Auth and written on raw sockets when the test needs control over the
bytes on the wire.
"""
import json
import re
import signal
import socket
import subprocess
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import REGION, TEST_AKID, TEST_SECRET, boto_kinesis, start_kinesisd

MAX_BODY = 65536
HEADER_TIMEOUT_MS = 500
BODY_TIMEOUT_MS = 700
IDLE_TIMEOUT_MS = 1500
MAX_CONNECTIONS = 8
STREAM = "http-test"



@pytest.fixture(scope="module")
def server():
    s = start_kinesisd(extra=["--max-body-bytes", str(MAX_BODY), "--header-timeout-ms", str(HEADER_TIMEOUT_MS),
                              "--body-timeout-ms", str(BODY_TIMEOUT_MS), "--idle-timeout-ms", str(IDLE_TIMEOUT_MS),
                              "--max-connections", str(MAX_CONNECTIONS), "--create-stream", f"{STREAM}:2"])
    yield s
    assert s.stop() == 0


def still_served(server):
    """An ordinary client still gets its answers."""
    c = boto_kinesis(server.endpoint)
    assert STREAM in c.list_streams()["StreamNames"]


def sign(server, target, payload, host=None):
    """A signed request as raw HTTP/1.1 bytes (keep-alive). host overrides the Host header (and what is signed)."""
    body = json.dumps(payload).encode()
    url = f"http://{host}/" if host else server.endpoint + "/"
    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Kinesis_20131202.{target}"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(TEST_AKID, TEST_SECRET), "kinesis",
                            REGION).add_auth(req)
    lines = ["POST / HTTP/1.1", f"Host: {host or f'127.0.0.1:{server.port}'}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Conn:
    """A raw client connection that reads whole responses (Content-Length framed)."""

    def __init__(self, server, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            self._fill()
            head, _, rest = self.buf.partition(b"\r\n\r\n")
        self.buf = rest[n:]
        status = int(head.split(b" ", 2)[1])
        return status, head.decode("latin-1"), rest[:n]

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def closed_within(self, seconds):
        """True when the server closes the connection (EOF or reset) within `seconds`."""
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# ---- protocol ----

def test_keep_alive_serves_many_requests_on_one_connection(server):
    c = Conn(server)
    for _ in range(20):
        c.send(sign(server, "ListStreams", {}))
        status, head, body = c.response()
        assert status == 200, body
        assert "connection: close" not in head.lower()
        assert STREAM in json.loads(body)["StreamNames"]
    c.close()


def test_pipelined_puts_are_answered_in_order(server):
    c = Conn(server)
    puts = [sign(server, "PutRecord", {"StreamName": STREAM, "Data": "cA==", "PartitionKey": f"p{i}",
                                      "ExplicitHashKey": "0"}) for i in range(16)]
    c.send(b"".join(puts))  # one write: every request is in the server's hands before the first answer
    seqs = []
    for _ in puts:
        status, head, body = c.response()
        assert status == 200, body
        assert re.search(r"(?im)^x-amzn-requestid:", head)
        out = json.loads(body)
        assert out["ShardId"] == "shardId-000000000000"
        seqs.append(int(out["SequenceNumber"]))
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # answers in request order
    c.close()


def test_any_host_is_accepted(server):
    host = "123456789012.data-kinesis.us-east-1.amazonaws.com"
    c = Conn(server)
    c.send(sign(server, "DescribeStreamSummary", {"StreamName": STREAM}, host=host))
    status, _, body = c.response()
    assert status == 200, body
    assert json.loads(body)["StreamDescriptionSummary"]["StreamName"] == STREAM
    c.close()


def curl_h2(server, target, payload, extra=()):
    p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--aws-sigv4", f"aws:amz:{REGION}:kinesis",
                        "--user", f"{TEST_AKID}:{TEST_SECRET}", "-H", "Content-Type: application/x-amz-json-1.1",
                        "-H", f"X-Amz-Target: Kinesis_20131202.{target}", "--data-binary", "@-",
                        "-w", "\n%{http_version} %{http_code}", *extra, server.endpoint + "/"],
                       input=json.dumps(payload).encode(), capture_output=True, timeout=30)
    body, _, status = p.stdout.decode().rpartition("\n")
    return status, body


def test_h2c_prior_knowledge(server):
    status, body = curl_h2(server, "PutRecord", {"StreamName": STREAM, "Data": "aDI=", "PartitionKey": "h2"})
    assert status == "2 200", body
    assert json.loads(body)["ShardId"].startswith("shardId-")


def test_h2_body_over_the_limit(server):
    status, body = curl_h2(server, "PutRecord", {"StreamName": STREAM, "Data": "A" * (2 * MAX_BODY),
                                                 "PartitionKey": "big"})
    assert status == "2 413", body
    assert json.loads(body)["__type"] == "SerializationException"
    still_served(server)


# ---- hostile clients ----

def test_body_over_the_limit_is_refused_before_it_is_read(server):
    c = Conn(server)
    head = (f"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-amz-json-1.1\r\n"
            f"X-Amz-Target: Kinesis_20131202.PutRecord\r\nContent-Length: {1 << 30}\r\n\r\n").encode()
    c.send(head + b"{" + b" " * 1000)  # announces 1 GiB, sends 1 KB: the answer must not wait for the rest
    status, head, body = c.response()
    assert status == 413
    assert "connection: close" in head.lower()
    assert json.loads(body)["__type"] == "SerializationException"
    assert c.closed_within(5)
    c.close()
    still_served(server)


def test_slow_headers_are_cut_off(server):
    c = Conn(server)
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\n")
    t0 = time.monotonic()
    time.sleep(0.2)
    c.send(b"X-Trickle: 1\r\n")  # a slow-loris keeps trickling; the deadline runs from the request's first byte
    assert c.closed_within(5)
    assert HEADER_TIMEOUT_MS / 1000 - 0.25 <= time.monotonic() - t0 < HEADER_TIMEOUT_MS / 1000 + 2
    c.close()
    still_served(server)


def test_slow_body_is_cut_off(server):
    c = Conn(server)
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n{\"a\"")
    t0 = time.monotonic()
    assert c.closed_within(5)
    assert BODY_TIMEOUT_MS / 1000 - 0.1 <= time.monotonic() - t0 < BODY_TIMEOUT_MS / 1000 + 2
    c.close()
    still_served(server)


def test_idle_keep_alive_connection_is_closed(server):
    c = Conn(server)
    c.send(sign(server, "ListStreams", {}))
    assert c.response()[0] == 200
    t0 = time.monotonic()
    assert c.closed_within(10)
    assert IDLE_TIMEOUT_MS / 1000 - 0.1 <= time.monotonic() - t0 < IDLE_TIMEOUT_MS / 1000 + 2
    c.close()


def test_idle_connections_cannot_lock_out_other_clients(server):
    hoard = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3 * MAX_CONNECTIONS)]
    try:
        still_served(server)  # the longest-idle connections made room
    finally:
        for s in hoard:
            s.close()


def test_garbage_gets_400_and_close(server):
    c = Conn(server)
    c.send(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n")  # e.g. a TLS hello to a plain port
    status, head, _ = c.response()
    assert status == 400
    assert "connection: close" in head.lower()
    assert c.closed_within(5)
    c.close()
    still_served(server)


def test_oversized_headers_get_431(server):
    c = Conn(server)
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 20000 + b"\r\nContent-Length: 2\r\n\r\n{}")
    status, _, _ = c.response()
    assert status == 431
    assert c.closed_within(5)
    c.close()
    still_served(server)


# ---- shutdown ----

def test_sigterm_exits_0_and_keeps_acknowledged_records(tmp_path):
    data = str(tmp_path / "data")
    s = start_kinesisd(data, extra=["--create-stream", "term:1"])
    k = boto_kinesis(s.endpoint)
    seq = k.put_record(StreamName="term", Data=b"before SIGTERM", PartitionKey="t")["SequenceNumber"]
    idle = Conn(s)  # an idle keep-alive connection must not hold the shutdown up
    assert s.stop(signal.SIGTERM, timeout=10) == 0
    idle.close()
    with open(s.log_path, "rb") as f:
        log = f.read().decode()
    assert "SIGTERM: stopping" in log and log.rstrip().endswith("INFO stopped")
    s = start_kinesisd(data)
    try:
        k = boto_kinesis(s.endpoint)
        it = k.get_shard_iterator(StreamName="term", ShardId="shardId-000000000000",
                                  ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
        records = k.get_records(ShardIterator=it["ShardIterator"])["Records"]
        assert records[0]["Data"] == b"before SIGTERM"
    finally:
        assert s.stop() == 0
