"""kinesisd over TLS (issue 5 "Optional TLS", issue 3 "h2 through ALPN when TLS is on"): a test CA and a server
certificate made here with the openssl command, kinesisd started with --tls-cert/--tls-key, and unmodified clients
with certificate verification on: the kinesis tool (--ca-bundle), boto3 (verify=), the aws CLI, the JS SDK v3 over
HTTP/2 and HTTP/1.1, and curl, which must negotiate h2 through ALPN. Without the CA, or with the wrong name, every
client refuses the server. Raw TLS sockets check what clients do not show: pipelining, a clean close_notify, the
handshake timeout, and plain http sent to the https port.
"""
import base64
import json
import os
import socket
import ssl
import subprocess
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
import pytest

from conftest import (KINESIS_BIN, KINESISD_BIN, NODE_MODULES, REGION, ROOT, TEST_AKID, TEST_SECRET, boto_kinesis,
                      cli_env, start_kinesisd, unique_name, wait_active)

HEADER_TIMEOUT_MS = 700
IDLE_TIMEOUT_MS = 1500
STREAM = "tls-test"



def openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=d)
    return os.path.join(d, f"{name}.pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """ca.pem signs server.pem (for IP 127.0.0.1 only, so "localhost" is the wrong name); other-ca.pem is a CA
    that signed nothing of ours."""
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d, "ca")
    other_ca = make_ca(d, "other-ca")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=kinesisd test",
            "-keyout", "server.key", "-out", "server.csr", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "server.ext", "-out", "server.pem", cwd=d)
    return {"ca": ca, "other_ca": other_ca, "cert": os.path.join(d, "server.pem"),
            "key": os.path.join(d, "server.key"), "dir": d}


@pytest.fixture(scope="module")
def server(pki):
    s = start_kinesisd(extra=["--tls-cert", pki["cert"], "--tls-key", pki["key"], "--create-stream", f"{STREAM}:2",
                              "--header-timeout-ms", str(HEADER_TIMEOUT_MS),
                              "--idle-timeout-ms", str(IDLE_TIMEOUT_MS), "--log-level", "debug"])
    s.endpoint = f"https://127.0.0.1:{s.port}"
    yield s
    assert s.stop() == 0, open(s.log_path, errors="replace").read()[-3000:]


def read_all(client, stream):
    """Every record of the stream, shard by shard, from TRIM_HORIZON."""
    out = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = client.get_records(ShardIterator=it)
            out += page["Records"]
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return out


def still_served(server, pki):
    assert STREAM in boto_kinesis(server.endpoint, verify=pki["ca"]).list_streams()["StreamNames"]


def kinesis(server, *args, endpoint=None):
    cmd = [KINESIS_BIN, "put-record", "--endpoint-url", endpoint or server.endpoint, "--stream-name", STREAM,
           "--max-attempts", "1", *args]
    return subprocess.run(cmd, env=cli_env(), capture_output=True, timeout=60)


# ---------------------------------------------------------------- the kinesis tool


def test_kinesis_tool_puts_with_the_test_ca(server, pki):
    data = f"over tls {time.monotonic_ns()}".encode()
    p = kinesis(server, "--ca-bundle", pki["ca"], "--partition-key", "tls", "--data", data.decode(),
                "--output", "json")
    assert p.returncode == 0, p.stderr.decode()
    seq = json.loads(p.stdout)["SequenceNumber"]
    got = [r for r in read_all(boto_kinesis(server.endpoint, verify=pki["ca"]), STREAM) if r["SequenceNumber"] == seq]
    assert [r["Data"] for r in got] == [data]


def test_kinesis_tool_trusts_AWS_CA_BUNDLE(server, pki):
    cmd = [KINESIS_BIN, "put-record", "--endpoint-url", server.endpoint, "--stream-name", STREAM,
           "--partition-key", "k", "--data", "x"]
    p = subprocess.run(cmd, env=cli_env(AWS_CA_BUNDLE=pki["ca"]), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().startswith("shardId-")


@pytest.mark.parametrize("how", ["system-store", "other-ca", "wrong-name"])
def test_kinesis_tool_refuses_an_untrusted_server(server, pki, how):
    """Verification is on: the system's CAs do not know ours, another CA did not sign it, and the certificate names
    127.0.0.1, not localhost. Each is a TLS error, exit 4 (network class), and nothing is written."""
    args = {"system-store": [], "other-ca": ["--ca-bundle", pki["other_ca"]],
            "wrong-name": ["--ca-bundle", pki["ca"]]}[how]
    endpoint = f"https://localhost:{server.port}" if how == "wrong-name" else None
    pk = f"refused-{how}-{time.monotonic_ns()}"
    p = kinesis(server, *args, "--partition-key", pk, "--data", "x", endpoint=endpoint)
    err = p.stderr.decode()
    assert p.returncode == 4, err
    assert err.startswith("kinesis: TLS error:"), err
    assert "certificate" in err.lower() or "ssl" in err.lower(), err
    assert not [r for r in read_all(boto_kinesis(server.endpoint, verify=pki["ca"]), STREAM) if r["PartitionKey"] == pk]


# ---------------------------------------------------------------- boto3, the aws CLI, the JS SDK, curl


def test_boto3_round_trip_with_verification(server, pki):
    c = boto_kinesis(server.endpoint, verify=pki["ca"])
    name = unique_name("tls-boto")
    c.create_stream(StreamName=name, ShardCount=2)
    wait_active(c, name)
    single = c.put_record(StreamName=name, PartitionKey="a", Data=b"\x00\x01binary\xff")
    batch = c.put_records(StreamName=name, Records=[{"PartitionKey": f"p{i}", "Data": bytes([i]) * 1000}
                                                    for i in range(50)])
    assert batch["FailedRecordCount"] == 0
    by_seq = {r["SequenceNumber"]: r["Data"] for r in read_all(c, name)}
    assert by_seq[single["SequenceNumber"]] == b"\x00\x01binary\xff"
    for i, r in enumerate(batch["Records"]):
        assert by_seq[r["SequenceNumber"]] == bytes([i]) * 1000
    c.delete_stream(StreamName=name)


def test_boto3_without_the_ca_refuses(server):
    with pytest.raises(botocore.exceptions.SSLError):
        boto_kinesis(server.endpoint, verify=True).list_streams()


def test_aws_cli_with_ca_bundle(server, pki):
    env = cli_env(AWS_DEFAULT_REGION=REGION)
    p = subprocess.run(["aws", "kinesis", "list-streams", "--endpoint-url", server.endpoint, "--ca-bundle",
                        pki["ca"], "--output", "json"], env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert STREAM in json.loads(p.stdout)["StreamNames"]
    p = subprocess.run(["aws", "kinesis", "list-streams", "--endpoint-url", server.endpoint], env=env,
                       capture_output=True, timeout=120)
    assert p.returncode != 0
    assert "SSL" in p.stderr.decode() or "certificate" in p.stderr.decode()


@pytest.mark.parametrize("handler", ["h2", "h1"])
def test_js_sdk_over_https(server, pki, handler):
    """The JS SDK v3: NodeHttp2Handler negotiates h2 by ALPN (the server's SETTINGS frame proves it),
    NodeHttpHandler HTTP/1.1; Node trusts the test CA through NODE_EXTRA_CA_CERTS."""
    script = os.path.join(ROOT, "tests", "integration", "js", "roundtrip.js")
    plan = {"shards": 2, "records": [{"data": base64.b64encode(os.urandom(100)).decode(), "pk": f"js{i}",
                                      "ehk": None} for i in range(5)]}
    env = cli_env(NODE_NO_WARNINGS="1", KN_NODE_MODULES=NODE_MODULES, NODE_EXTRA_CA_CERTS=pki["ca"])
    out = subprocess.run(["node", script, server.endpoint, unique_name("tls-js"), handler],
                         input=json.dumps(plan).encode(), env=env, capture_output=True, timeout=120)
    assert out.stdout.strip(), out.stderr.decode(errors="replace")
    report = json.loads(out.stdout)
    assert "fatal" not in report, report
    assert sorted(r["data"] for r in report["read"]) == sorted(r["data"] for r in plan["records"])
    if handler == "h2":
        assert report["wire"]["h2RemoteSettings"] >= 1 and report["wire"]["h2Errors"] == [], report["wire"]
    else:
        assert report["wire"]["h2Sessions"] == 0, report["wire"]  # (https.request is not counted as h1Requests)


def curl(server, pki, *flags, target="ListStreams", payload="{}", url=None):
    p = subprocess.run(["curl", "-sS", "-v", *flags, "--cacert", pki["ca"], "--aws-sigv4",
                        f"aws:amz:{REGION}:kinesis", "--user", f"{TEST_AKID}:{TEST_SECRET}",
                        "-H", "Content-Type: application/x-amz-json-1.1",
                        "-H", f"X-Amz-Target: Kinesis_20131202.{target}", "-d", payload,
                        "-w", "\n%{http_version} %{http_code}", url or server.endpoint + "/"],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    body, _, status = p.stdout.decode().rpartition("\n")
    return status, body, p.stderr.decode(errors="replace")


def test_curl_http2_negotiates_h2_through_alpn(server, pki):
    status, body, trace = curl(server, pki, "--http2")
    assert "ALPN: server accepted h2" in trace, trace
    assert status == "2 200"
    assert STREAM in json.loads(body)["StreamNames"]


def test_curl_http11_negotiates_http11_through_alpn(server, pki):
    status, body, trace = curl(server, pki, "--http1.1")
    assert "ALPN: server accepted http/1.1" in trace, trace
    assert status == "1.1 200"
    assert STREAM in json.loads(body)["StreamNames"]


def test_curl_many_h2_streams_on_one_connection(server, pki):
    """Twenty PutRecords multiplexed on one TLS connection (curl --parallel), each answered and stored."""
    urls = [f"{server.endpoint}/?n={i}" for i in range(20)]
    payload = json.dumps({"StreamName": STREAM, "PartitionKey": "par", "Data": base64.b64encode(b"p").decode()})
    p = subprocess.run(["curl", "-sS", "--http2", "--parallel", "--parallel-max", "20", "--cacert", pki["ca"],
                        "--aws-sigv4", f"aws:amz:{REGION}:kinesis", "--user", f"{TEST_AKID}:{TEST_SECRET}",
                        "-H", "Content-Type: application/x-amz-json-1.1",
                        "-H", "X-Amz-Target: Kinesis_20131202.PutRecord", "-d", payload,
                        "-w", "\n%{http_version} %{http_code} %{num_connects}\n", *urls],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    lines = [line for line in p.stdout.decode().splitlines() if line.startswith("2 ")]
    assert len(lines) == 20 and all(line.startswith("2 200") for line in lines), p.stdout.decode()
    assert sum(int(line.split()[2]) for line in lines) <= 2, p.stdout.decode()  # multiplexed, not 20 connections


def test_large_records_over_tls(server, pki, tmp_path):
    """Megabyte bodies both ways: many TLS records per request and per answer, over HTTP/1.1 (boto3) and HTTP/2
    (curl), with HTTP/2 flow control on top of TLS."""
    c = boto_kinesis(server.endpoint, verify=pki["ca"])
    name = unique_name("tls-big")
    c.create_stream(StreamName=name, ShardCount=1)
    wait_active(c, name)
    sent = [os.urandom(1000 * 1000) for _ in range(3)]
    seqs = [c.put_record(StreamName=name, PartitionKey="big", Data=d)["SequenceNumber"] for d in sent]
    big = os.urandom(1000 * 1000)
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"StreamName": name, "PartitionKey": "h2", "Data": base64.b64encode(big).decode()}))
    status, answer, trace = curl(server, pki, "--http2", target="PutRecord", payload=f"@{body}")
    assert status == "2 200", answer
    seqs.append(json.loads(answer)["SequenceNumber"])
    got = {r["SequenceNumber"]: r["Data"] for r in read_all(c, name)}  # one GetRecords answer of about 4 MB
    assert [got[q] for q in seqs] == sent + [big]
    c.delete_stream(StreamName=name)


def test_sigterm_with_tls_connections_open(pki):
    """Idle TLS connections, one mid-handshake and one mid-request do not keep kinesisd from a clean exit 0 (and,
    in the sanitizer build, from exiting without a leak)."""
    s = start_kinesisd(extra=["--tls-cert", pki["cert"], "--tls-key", pki["key"], "--create-stream", "bye:1"])
    s.endpoint = f"https://127.0.0.1:{s.port}"
    socks = []
    try:
        for _ in range(3):
            t = tls_connect(s, pki)
            t.sendall(signed_put(s, 0, stream="bye"))
            read_responses(t, 1)
            socks.append(t)
        half = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        half.sendall(b"\x16\x03\x01\x02\x00\x01")
        socks.append(half)
        partial = tls_connect(s, pki)
        partial.sendall(signed_put(s, 1, stream="bye")[:100])
        socks.append(partial)
        time.sleep(0.2)
    finally:
        code = s.stop()
        for t in socks:
            t.close()
    assert code == 0, open(s.log_path, errors="replace").read()[-3000:]


# ---------------------------------------------------------------- raw TLS sockets


def signed_put(server, i, close=False, stream=STREAM):
    body = json.dumps({"StreamName": stream, "PartitionKey": f"pipe{i}",
                       "Data": base64.b64encode(f"pipelined {i}".encode()).decode()}).encode()
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecord"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(TEST_AKID, TEST_SECRET), "kinesis", REGION).add_auth(req)
    lines = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def tls_connect(server, pki, alpn=("http/1.1",)):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    # suppress_ragged_eofs=False: an end without close_notify raises instead of reading as a clean b"".
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)


def read_responses(sock, count):
    buf, out = b"", []
    while len(out) < count:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode()
            length = int([h.split(":", 1)[1] for h in head.split("\r\n") if h.lower().startswith("content-length")][0])
            if len(buf) >= head_end + 4 + length:
                out.append((head.split("\r\n")[0], buf[head_end + 4:head_end + 4 + length]))
                buf = buf[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"connection ended after {len(out)} of {count} answers"
        buf += chunk
    return out


def test_pipelined_requests_over_tls_are_answered_in_order(server, pki):
    """40 signed PutRecords in one TLS write: more than the 16 a connection may have outstanding, so the parser
    pauses with input still inside OpenSSL and must resume from there."""
    with tls_connect(server, pki) as s:
        assert s.selected_alpn_protocol() == "http/1.1"
        s.sendall(b"".join(signed_put(server, i) for i in range(40)))
        answers = read_responses(s, 40)
    assert all(line == "HTTP/1.1 200 OK" for line, _ in answers), answers[:3]
    seqs = [json.loads(body)["SequenceNumber"] for _, body in answers]
    records = {r["SequenceNumber"]: r["Data"] for r in read_all(boto_kinesis(server.endpoint, verify=pki["ca"]), STREAM)}
    assert [records[q] for q in seqs] == [f"pipelined {i}".encode() for i in range(40)]


def test_client_without_alpn_is_served_by_sniffing(server, pki):
    with tls_connect(server, pki, alpn=None) as s:
        assert s.selected_alpn_protocol() is None
        s.sendall(signed_put(server, 0) + signed_put(server, 1))
        assert [line for line, _ in read_responses(s, 2)] == ["HTTP/1.1 200 OK"] * 2


def test_connection_close_ends_with_close_notify(server, pki):
    with tls_connect(server, pki) as s:
        s.sendall(signed_put(server, 0, close=True))
        [(line, _)] = read_responses(s, 1)
        assert line == "HTTP/1.1 200 OK"
        assert s.recv(100) == b""  # close_notify: a ragged end would raise ssl.SSLEOFError


def test_idle_tls_connection_is_closed_cleanly(server, pki):
    """After an answer, a keep-alive connection left idle is closed at the idle timeout, with close_notify."""
    with tls_connect(server, pki) as s:
        s.sendall(signed_put(server, 0))
        [(line, _)] = read_responses(s, 1)
        assert line == "HTTP/1.1 200 OK"
        started = time.monotonic()
        assert s.recv(100) == b""
        assert IDLE_TIMEOUT_MS / 1000 * 0.8 <= time.monotonic() - started < IDLE_TIMEOUT_MS / 1000 + 3


def send_and_drain(server, data):
    """Sends raw bytes on a new connection and reads until the server closes it (or resets it)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(data)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x02\x00\x01"], ids=["nothing", "half-a-client-hello"])
def test_slow_handshake_is_cut_off(server, pki, sent):
    """The handshake counts against the header timeout from accept."""
    started = time.monotonic()
    send_and_drain(server, sent)
    elapsed = time.monotonic() - started
    assert HEADER_TIMEOUT_MS / 1000 * 0.8 <= elapsed < HEADER_TIMEOUT_MS / 1000 + 3, elapsed
    still_served(server, pki)


def test_handshake_without_a_request_is_cut_off(server, pki):
    """A finished handshake is not a request: the header timeout from accept still applies."""
    with tls_connect(server, pki) as s:
        started = time.monotonic()
        assert s.recv(100) == b""
        elapsed = time.monotonic() - started
    assert HEADER_TIMEOUT_MS / 1000 * 0.5 <= elapsed < HEADER_TIMEOUT_MS / 1000 + 3, elapsed


def test_plain_http_to_the_tls_port_is_told_so(server, pki):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"This port speaks https" in data
    still_served(server, pki)


def test_garbage_and_aborted_handshakes_leave_the_server_healthy(server, pki):
    for junk in [os.urandom(2000), b"\x16\x03\x01\xff\xff" + os.urandom(100), b"\x15\x03\x03\x00\x02\x02\x28"]:
        send_and_drain(server, junk)
    for _ in range(5):  # handshakes dropped half way: ClientHello sent, ServerHello read, then gone
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        hello = ssl.create_default_context(cafile=pki["ca"]).wrap_bio(incoming, outgoing,
                                                                      server_hostname="127.0.0.1")
        with pytest.raises(ssl.SSLWantReadError):
            hello.do_handshake()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            raw.sendall(outgoing.read())
            assert raw.recv(4096)[:1] == b"\x16"  # a handshake record back
    still_served(server, pki)


def test_tls_options_are_checked_at_start_up(pki, tmp_path):
    def run(*args):
        return subprocess.run([KINESISD_BIN, "--in-memory", "--port", "0", *args], capture_output=True, timeout=30)
    p = run("--tls-cert", pki["cert"])
    assert p.returncode == 2 and b"--tls-cert and --tls-key go together" in p.stderr
    p = run("--tls-cert", pki["cert"], "--tls-key", str(tmp_path / "missing.key"))
    assert p.returncode == 1 and str(tmp_path / "missing.key").encode() in p.stderr, p.stderr
    p = run("--tls-cert", pki["cert"], "--tls-key", os.path.join(pki["dir"], "other-ca.key"))
    assert p.returncode == 1 and b"mismatch" in p.stderr, p.stderr
    assert b"BEGIN" not in p.stderr  # no key material in the message
