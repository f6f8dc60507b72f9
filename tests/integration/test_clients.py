"""Unmodified AWS clients against kinesisd (issue 3, "Proof"): boto3, the aws CLI v1 (pyenv) and v2 (Debian), and the
JavaScript SDK v3 with its default handler (HTTP/2, prior knowledge) and its HTTP/1.1 handler.

Every test runs against a kinesisd this module starts on its own --data-dir. KN_CLIENTS_TARGET=kinesalite runs the
same tests against kinesalite instead, to show that the tests hold against a server nobody here wrote (there the
HTTP/2 test is expected to fail: kinesalite speaks HTTP/1.1 only, see test_js_sdk_default_h2_fails_on_kinesalite).
"""
import base64
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import (NODE_MODULES, REGION, ROOT, TEST_AKID, TEST_SECRET, cli_env, start_kinesalite, start_kinesisd,
                      unique_name, wait_active)

TARGET = os.environ.get("KN_CLIENTS_TARGET", "kinesisd")
JS_ROUNDTRIP = os.path.join(ROOT, "tests", "integration", "js", "roundtrip.js")
HASH_MAX = 2**128 - 1
ARN_PREFIX = r"arn:aws:kinesis:us-east-1:\d{12}:stream/"
SEQ_RE = re.compile(r"^(0|[1-9]\d{0,128})$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if TARGET == "kinesalite":
        s = start_kinesalite()
    else:
        s = start_kinesisd(str(tmp_path_factory.mktemp("kinesisd-clients")))
    yield s
    rc = s.stop()
    if TARGET == "kinesisd":
        # SIGTERM is a clean shutdown (exit 0); under ASan a leak or error report also makes this non-zero.
        with open(s.log_path, "rb") as f:
            assert rc == 0, f"kinesisd exited {rc} on SIGTERM; log tail:\n" + f.read()[-3000:].decode(errors="replace")


class RawCapture:
    """Keeps the raw HTTP response of the last call, to check what went over the wire (e.g. `__type`)."""

    def __init__(self, client):
        self.last = None
        client.meta.events.register("after-call.kinesis", self._keep)

    def _keep(self, http_response, **_):
        self.last = http_response


def client_for(server, **cfg):
    """A boto3 client with retries off, so one call is one request (total_max_attempts: botocore's "max_attempts"
    would count retries after the first). cfg goes to botocore's Config."""
    config = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                    read_timeout=30, **cfg)
    return boto3.client("kinesis", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=TEST_AKID,
                        aws_secret_access_key=TEST_SECRET, config=config)


def shard_starts(n):
    """AWS's split of the hash space: shard i starts at i*floor(2^128/n), the last ends at 2^128-1."""
    return [i * (2**128 // n) for i in range(n)]


def expected_shard(n, partition_key, explicit_hash_key=None):
    h = int(explicit_hash_key) if explicit_hash_key is not None else \
        int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")
    idx = max(i for i, start in enumerate(shard_starts(n)) if start <= h)
    return f"shardId-{idx:012d}"


def read_iterator(c, iterator, want, max_empty=3):
    """GetRecords from iterator until `want` records arrived or max_empty empty pages in a row; returns
    (records, last response)."""
    out, resp, empty = [], None, 0
    while iterator and len(out) < want and empty < max_empty:
        resp = c.get_records(ShardIterator=iterator, Limit=1000)
        out += resp["Records"]
        empty = 0 if resp["Records"] else empty + 1
        iterator = resp.get("NextShardIterator")
    return out, resp


def shard_iterator(c, name, shard, kind, **kw):
    return c.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind, **kw)["ShardIterator"]


def wait_gone(c, name, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status = c.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
            assert status == "DELETING", status
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            return
        time.sleep(0.05)
    raise AssertionError(f"stream {name} still exists {timeout}s after DeleteStream")


# Records for the boto3 round trip: (data, partition key, explicit hash key). Binary with NUL bytes, every byte
# value, Unicode keys (the 256-character key is 512 UTF-8 bytes: the limit counts characters), and explicit hash
# keys on both sides of the boundary between the two shards.
BOTO_RECORDS = [
    (bytes(range(256)), "every-byte", None),
    (b"\x00", "nul", None),
    (b"\x00\x00\xffhello\x00", "ключ-🔑", None),
    ("日本語のテキスト".encode(), "日本語", None),
    (b"\xfe\xff" * 1000, "é" * 256, None),
    (b"to-shard-0", "x", "0"),
    (b"shard-0-end", "y", str(2**127 - 1)),
    (b"shard-1-start", "y", str(2**127)),
    (b"to-last-shard", "x", str(HASH_MAX)),
]


def put_boto_records(c, name, records):
    """First three through PutRecord, the rest in one PutRecords; returns [(shard, seq, data, pk)] in put order."""
    acks = []
    for data, pk, ehk in records[:3]:
        kw = {"ExplicitHashKey": ehk} if ehk else {}
        r = c.put_record(StreamName=name, Data=data, PartitionKey=pk, **kw)
        acks.append((r["ShardId"], r["SequenceNumber"], data, pk))
    batch = [dict(Data=d, PartitionKey=pk, **({"ExplicitHashKey": e} if e else {})) for d, pk, e in records[3:]]
    r = c.put_records(StreamName=name, Records=batch)
    assert r["FailedRecordCount"] == 0, r
    assert len(r["Records"]) == len(batch)
    for (data, pk, _), res in zip(records[3:], r["Records"]):
        acks.append((res["ShardId"], res["SequenceNumber"], data, pk))
    return acks


def test_boto3_roundtrip_every_iterator_type(server):
    c = client_for(server)
    name = unique_name("boto")
    t_start = time.time() - 1
    c.create_stream(StreamName=name, ShardCount=2)
    wait_active(c, name)

    acks = put_boto_records(c, name, BOTO_RECORDS)
    for (shard, seq, data, pk), (_, _, ehk) in zip(acks, BOTO_RECORDS):
        assert shard == expected_shard(2, pk, ehk), (pk, ehk)
        assert SEQ_RE.match(seq) and len(seq) == 56, seq

    seqs = [int(a[1]) for a in acks]
    assert len(set(seqs)) == len(seqs), "sequence numbers must be unique in the stream"
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        mine = sorted((a for a in acks if a[0] == shard), key=lambda a: int(a[1]))
        assert len(mine) >= 3, "the plan puts several records on each shard"
        # Sequential puts: put order is sequence order within a shard.
        in_put_order = [a for a in acks if a[0] == shard]
        assert [a[1] for a in in_put_order] == [a[1] for a in mine]
        want = [(a[1], a[2], a[3]) for a in mine]

        got, resp = read_iterator(c, shard_iterator(c, name, shard, "TRIM_HORIZON"), len(want))
        assert [(r["SequenceNumber"], r["Data"], r["PartitionKey"]) for r in got] == want
        assert "MillisBehindLatest" in resp and resp["NextShardIterator"]
        for r in got:
            assert t_start <= r["ApproximateArrivalTimestamp"].timestamp() <= time.time() + 1

        at, _ = read_iterator(c, shard_iterator(c, name, shard, "AT_SEQUENCE_NUMBER",
                                                StartingSequenceNumber=want[1][0]), len(want) - 1)
        assert [(r["SequenceNumber"], r["Data"], r["PartitionKey"]) for r in at] == want[1:]
        after, _ = read_iterator(c, shard_iterator(c, name, shard, "AFTER_SEQUENCE_NUMBER",
                                                   StartingSequenceNumber=want[1][0]), len(want) - 2)
        assert [(r["SequenceNumber"], r["Data"]) for r in after] == [(s, d) for s, d, _ in want[2:]]
        ts_all, _ = read_iterator(c, shard_iterator(c, name, shard, "AT_TIMESTAMP", Timestamp=t_start), len(want))
        assert [r["SequenceNumber"] for r in ts_all] == [w[0] for w in want]

        # LATEST is taken before the put and must yield exactly the record put after it; AT_TIMESTAMP from a moment
        # between the old records and the new one yields only the new one. botocore sends AT_TIMESTAMP in whole
        # seconds, so that moment is the next whole second.
        latest = shard_iterator(c, name, shard, "LATEST")
        t_mid = math.floor(time.time()) + 1
        time.sleep(t_mid + 0.02 - time.time())
        ehk = "0" if shard.endswith("0") else str(HASH_MAX)
        new = c.put_record(StreamName=name, Data=b"\x00after-latest\x00", PartitionKey="late", ExplicitHashKey=ehk)
        assert new["ShardId"] == shard and int(new["SequenceNumber"]) > int(want[-1][0])
        got, _ = read_iterator(c, latest, 1)
        assert [(r["SequenceNumber"], r["Data"]) for r in got] == [(new["SequenceNumber"], b"\x00after-latest\x00")]
        got, _ = read_iterator(c, shard_iterator(c, name, shard, "AT_TIMESTAMP", Timestamp=t_mid), 2)
        assert [r["SequenceNumber"] for r in got] == [new["SequenceNumber"]]

    c.delete_stream(StreamName=name)
    wait_gone(c, name)


def test_boto3_describe_and_list_shards(server):
    c = client_for(server)
    name = unique_name("desc")
    c.create_stream(StreamName=name, ShardCount=3)
    summary = wait_active(c, name)
    assert summary["StreamName"] == name and summary["OpenShardCount"] == 3
    assert re.fullmatch(ARN_PREFIX + re.escape(name), summary["StreamARN"])
    assert summary["RetentionPeriodHours"] == 24

    desc = c.describe_stream(StreamName=name)["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE" and desc["HasMoreShards"] is False
    starts = shard_starts(3)
    ends = [s - 1 for s in starts[1:]] + [HASH_MAX]
    want = [(f"shardId-{i:012d}", str(starts[i]), str(ends[i])) for i in range(3)]
    got = [(s["ShardId"], s["HashKeyRange"]["StartingHashKey"], s["HashKeyRange"]["EndingHashKey"])
           for s in desc["Shards"]]
    assert got == want
    for s in desc["Shards"]:
        assert SEQ_RE.match(s["SequenceNumberRange"]["StartingSequenceNumber"])
        assert "EndingSequenceNumber" not in s["SequenceNumberRange"]

    listed = c.list_shards(StreamName=name)["Shards"]
    assert [(s["ShardId"], s["HashKeyRange"]["StartingHashKey"], s["HashKeyRange"]["EndingHashKey"])
            for s in listed] == want
    # Pagination: one shard per page, then NextToken alone (StreamName must not be repeated with it).
    page = c.list_shards(StreamName=name, MaxResults=1)
    ids = [s["ShardId"] for s in page["Shards"]]
    while page.get("NextToken"):
        page = c.list_shards(NextToken=page["NextToken"], MaxResults=1)
        ids += [s["ShardId"] for s in page["Shards"]]
    assert ids == [w[0] for w in want]
    # By ARN as well as by name.
    if TARGET != "kinesalite":  # kinesalite predates StreamARN parameters
        by_arn = c.list_shards(StreamARN=summary["StreamARN"])["Shards"]
        assert [s["ShardId"] for s in by_arn] == ids

    assert name in c.list_streams(Limit=10000)["StreamNames"]
    c.delete_stream(StreamName=name)
    wait_gone(c, name)
    assert name not in c.list_streams(Limit=10000)["StreamNames"]


def test_boto3_max_size_record(server):
    """A record of exactly 1 MiB (data + partition key bytes) is accepted and read back whole."""
    c = client_for(server)
    name = unique_name("big")
    c.create_stream(StreamName=name, ShardCount=1)
    wait_active(c, name)
    pk = "big-ключ"
    data = os.urandom(1024 * 1024 - len(pk.encode()))
    put = c.put_record(StreamName=name, Data=data, PartitionKey=pk)
    got, _ = read_iterator(c, shard_iterator(c, name, "shardId-000000000000", "TRIM_HORIZON"), 1)
    assert len(got) == 1 and got[0]["SequenceNumber"] == put["SequenceNumber"]
    assert got[0]["Data"] == data and got[0]["PartitionKey"] == pk
    c.delete_stream(StreamName=name)


def test_boto3_worked_example(server):
    """The step's worked example: stream Testing, 3 shards, key 123456, the unpadded base64 data → shard 2."""
    c = client_for(server)
    c.create_stream(StreamName="Testing", ShardCount=3)
    wait_active(c, "Testing")
    b64 = "SGVsbG8slFRoaXMgaXMgYSB0ZXN0IHN0cmluZw"
    data = base64.b64decode(b64 + "=" * (-len(b64) % 4))
    assert data == b"Hello,\x94This is a test string"
    r = c.put_record(StreamName="Testing", Data=data, PartitionKey="123456")
    assert r["ShardId"] == "shardId-000000000002"
    got, _ = read_iterator(c, shard_iterator(c, "Testing", r["ShardId"], "AT_SEQUENCE_NUMBER",
                                             StartingSequenceNumber=r["SequenceNumber"]), 1)
    assert [(g["Data"], g["PartitionKey"]) for g in got] == [(data, "123456")]
    c.delete_stream(StreamName="Testing")
    wait_gone(c, "Testing")


def assert_wire_error(cap, status, type_):
    """The raw response is AWS's JSON error: {"__type": ..., "message": ...} with a request id header."""
    assert cap.last is not None and cap.last.status_code == status
    body = json.loads(cap.last.content)
    assert body["__type"].split("#")[-1] == type_, body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert cap.last.headers.get("x-amzn-RequestId")
    return body


def test_boto3_errors(server):
    # Client-side validation off, so the too-long key reaches the server as an SDK without it would send it.
    c = client_for(server, parameter_validation=False)
    cap = RawCapture(c)
    missing = unique_name("missing")

    with pytest.raises(ClientError) as e:
        c.describe_stream_summary(StreamName=missing)
    err = e.value.response
    assert err["Error"]["Code"] == "ResourceNotFoundException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert re.fullmatch(rf"Stream {missing} under account \d{{12}} not found\.", err["Error"]["Message"])
    assert_wire_error(cap, 400, "ResourceNotFoundException")

    with pytest.raises(ClientError) as e:
        c.put_record(StreamName=missing, Data=b"x", PartitionKey="k")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    name = unique_name("val")
    c.create_stream(StreamName=name, ShardCount=1)
    wait_active(c, name)
    with pytest.raises(ClientError) as e:
        c.put_record(StreamName=name, Data=b"x", PartitionKey="k" * 257)
    err = e.value.response
    assert err["Error"]["Code"] == "ValidationException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Message"] == (
        f"1 validation error detected: Value '{'k' * 257}' at 'partitionKey' failed to satisfy constraint: "
        "Member must have length less than or equal to 256")
    assert_wire_error(cap, 400, "ValidationException")
    c.delete_stream(StreamName=name)


# --- aws CLI v1 and v2 -------------------------------------------------------------------------------------------

def aws_v1():
    exe = os.path.join(os.path.dirname(sys.executable), "aws")
    return exe if os.path.exists(exe) else shutil.which("aws")


AWS_CLIS = {"v1": aws_v1, "v2": lambda: "/usr/bin/aws"}


class AwsCli:
    """Runs one aws CLI with only our environment: env credentials and region, config files at /dev/null."""

    def __init__(self, version, endpoint):
        self.exe = AWS_CLIS[version]()
        self.endpoint = endpoint
        # v1 reads AWS_DEFAULT_REGION only; AWS_MAX_ATTEMPTS counts every attempt (1 = no retries).
        self.env = cli_env(AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard",
                           LC_ALL="C.UTF-8")
        out = subprocess.run([self.exe, "--version"], env=self.env, capture_output=True, text=True, timeout=60)
        assert out.stdout.startswith(f"aws-cli/{version[1]}."), (self.exe, out.stdout, out.stderr)

    def run(self, *args, check=True):
        cmd = [self.exe, "kinesis", *args, "--endpoint-url", self.endpoint, "--output", "json"]
        out = subprocess.run(cmd, env=self.env, capture_output=True, timeout=60)
        if check:
            assert out.returncode == 0, (cmd, out.returncode, out.stderr.decode(errors="replace"))
            return json.loads(out.stdout) if out.stdout.strip() else None
        return out


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_aws_cli_roundtrip(server, version, tmp_path):
    aws = AwsCli(version, server.endpoint)
    name = unique_name(f"cli{version}")
    aws.run("create-stream", "--stream-name", name, "--shard-count", "1")
    deadline = time.time() + 30
    while aws.run("describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]["StreamStatus"] \
            != "ACTIVE":
        assert time.time() < deadline, "stream never became ACTIVE"
        time.sleep(0.1)

    binary = b"\x00\x01\x02\xffbinary\x00with NULs\x00"
    blob = tmp_path / "record.bin"
    blob.write_bytes(binary)
    # (CLI arguments for the data, bytes the server must store, partition key)
    puts = [(["--data", f"fileb://{blob}"], binary, "bin-🔑")]
    if version == "v1":
        # v1 sends a --data string's UTF-8 bytes as they are.
        puts.append((["--data", "Grüße aus v1"], "Grüße aus v1".encode(), "ключ"))
    else:
        # v2 reads a --data string as base64 unless told raw-in-base64-out.
        raw = b"\x00\xfe v2 base64 \xff"
        puts.append((["--data", base64.b64encode(raw).decode()], raw, "ключ"))
        puts.append((["--data", "Grüße aus v2", "--cli-binary-format", "raw-in-base64-out"],
                     "Grüße aus v2".encode(), "日本"))

    acks = []
    for args, data, pk in puts:
        r = aws.run("put-record", "--stream-name", name, "--partition-key", pk, *args)
        assert r["ShardId"] == "shardId-000000000000"
        acks.append((r["SequenceNumber"], data, pk))

    it = aws.run("get-shard-iterator", "--stream-name", name, "--shard-id", "shardId-000000000000",
                 "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
    got = aws.run("get-records", "--shard-iterator", it)["Records"]
    assert [(r["SequenceNumber"], base64.b64decode(r["Data"]), r["PartitionKey"]) for r in got] == acks

    assert name in aws.run("list-streams")["StreamNames"]
    summary = aws.run("describe-stream-summary", "--stream-name", name)["StreamDescriptionSummary"]
    assert summary["StreamName"] == name and summary["OpenShardCount"] == 1

    out = aws.run("describe-stream-summary", "--stream-name", f"{name}-missing", check=False)
    assert out.returncode != 0
    assert "(ResourceNotFoundException)" in out.stderr.decode() and "not found" in out.stderr.decode()

    aws.run("delete-stream", "--stream-name", name)
    wait_gone(client_for(server), name)


# --- JavaScript SDK v3 -------------------------------------------------------------------------------------------

JS_RECORDS = [
    (b"\x00\x01js-put-record\x00", "js-🔑", None),
    (bytes(range(255, -1, -1)), "js-every-byte", None),
    (b"\x00", "ключ", None),
    (b"js-ehk-last", "x", str(HASH_MAX)),
    (b"js-ehk-first", "x", "0"),
]


def run_js(endpoint, stream, handler, records=JS_RECORDS, timeout=90):
    plan = {"shards": 2, "records": [{"data": base64.b64encode(d).decode(), "pk": pk, "ehk": e}
                                     for d, pk, e in records]}
    env = cli_env(NODE_NO_WARNINGS="1", KN_NODE_MODULES=NODE_MODULES)
    out = subprocess.run(["node", JS_ROUNDTRIP, endpoint, stream, handler], input=json.dumps(plan).encode(),
                         env=env, capture_output=True, timeout=timeout)
    assert out.stdout.strip(), out.stderr.decode(errors="replace")
    return json.loads(out.stdout), out


def check_js_report(report, records=JS_RECORDS):
    assert "fatal" not in report, report
    assert report["sdkStage"] == "done"
    assert report["failedRecordCount"] == 0
    assert len(report["put"]) == len(records)
    for p, (_, pk, ehk) in zip(report["put"], records):
        assert p["shard"] == expected_shard(2, pk, ehk), (p, pk)
    by_seq = {p["seq"]: (p["shard"], d, pk) for p, (d, pk, _) in zip(report["put"], records)}
    assert len(by_seq) == len(records)
    got = [(r["shard"], base64.b64decode(r["data"]), r["pk"]) for r in report["read"]]
    want = [by_seq[s] for s in sorted(by_seq, key=lambda s: (by_seq[s][0], int(s)))]
    assert got == want
    assert [r["seq"] for r in report["read"]] == sorted(by_seq, key=lambda s: (by_seq[s][0], int(s)))

    missing = report["errors"]["missing_stream"]
    assert missing["name"] == "ResourceNotFoundException" and missing["status"] == 400
    assert missing["fault"] == "client" and missing["requestId"]
    long_key = report["errors"]["long_partition_key"]
    assert long_key["name"] == "ValidationException" and long_key["status"] == 400
    assert long_key["message"].startswith("1 validation error detected")


def test_js_sdk_default_handler_speaks_h2(server):
    if TARGET == "kinesalite":
        pytest.skip("kinesalite has no HTTP/2: see test_js_sdk_default_h2_fails_on_kinesalite")
    report, _ = run_js(server.endpoint, unique_name("jsh2"), "default")
    assert "fatal" not in report, report
    # The client's untouched default is the HTTP/2 handler, and the server really answered in HTTP/2: it sent
    # SETTINGS and every request went over an h2 stream, none over HTTP/1.1.
    assert report["handler"] == "NodeHttp2Handler" and report["handlerProtocol"] == "h2"
    wire = report["wire"]
    assert wire["h2Sessions"] >= 1 and wire["h2RemoteSettings"] == wire["h2Sessions"], wire
    assert wire["h2Streams"] >= 10 and wire["h1Requests"] == 0 and not wire["h2Errors"], wire
    check_js_report(report)


def test_js_sdk_http1_handler(server):
    report, _ = run_js(server.endpoint, unique_name("jsh1"), "h1")
    assert "fatal" not in report, report
    assert report["handler"] == "NodeHttpHandler" and report["handlerProtocol"] == "http/1.1"
    wire = report["wire"]
    assert wire["h1Requests"] >= 10 and wire["h2Sessions"] == 0, wire
    check_js_report(report)


def test_js_sdk_default_h2_fails_on_kinesalite(kinesalite):
    """Documented peer limitation, not ours: kinesalite speaks HTTP/1.1 only, so the JS SDK v3's default client
    fails against it on the very first call with a protocol error (the reason kinesisd serves h2c)."""
    report, _ = run_js(kinesalite.endpoint, unique_name("jsh2kl"), "default", timeout=60)
    assert report["handler"] == "NodeHttp2Handler"
    assert report["sdkStage"] == "create" and report["fatal"]["code"] == "ERR_HTTP2_ERROR", report
    assert report["fatal"]["message"] == "Protocol error"
    assert report["wire"]["h2RemoteSettings"] == 0
