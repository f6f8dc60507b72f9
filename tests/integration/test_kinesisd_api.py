"""kinesisd's Kinesis API (issue 3, "Protocol" and "Operations and semantics") driven by boto3 and by raw signed HTTP
requests: every operation, every iterator type read back byte for byte, pagination, the worked example, and the error
cases with AWS's exact types and messages.

The module runs its own kinesisd on a --data-dir (the durable default). The tests named *_parity also run against
kinesalite, whose error texts were recorded against the real service: where both agree, the expected text is AWS's.
"""
import base64
import datetime
import hashlib
import http.client
import json
import re
import socket
import time
import urllib.parse

import boto3
import botocore.config
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, TEST_AKID, TEST_SECRET, start_kinesisd, unique_name, wait_active

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ACCOUNT = "000000000000"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kinesisd-api"))


@pytest.fixture(scope="module")
def server(data_dir):
    s = start_kinesisd(data_dir)
    yield s
    s.stop()


def make_client(endpoint, validate=True):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                                 parameter_validation=validate)
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=TEST_AKID,
                        aws_secret_access_key=TEST_SECRET, config=cfg)


@pytest.fixture(scope="module")
def kin(server):
    return make_client(server.endpoint)


@pytest.fixture(scope="module")
def loose(server):
    """A client that sends what it is given, so the server's own validation answers."""
    return make_client(server.endpoint, validate=False)


@pytest.fixture(params=["kinesisd", "kinesalite"])
def parity_server(request, server):
    return server if request.param == "kinesisd" else request.getfixturevalue("kinesalite")


def new_stream(client, shards=1, prefix="api"):
    name = unique_name(prefix)
    client.create_stream(StreamName=name, ShardCount=shards)
    wait_active(client, name)
    return name


def error_of(call, **kw):
    with pytest.raises(ClientError) as e:
        call(**kw)
    err = e.value.response["Error"]
    return err["Code"], err.get("Message", ""), e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def raw(endpoint, op, body, content_type="application/x-amz-json-1.1", sign=True, target=None, method="POST"):
    """Sends one request as given (signed with SigV4 unless sign is False). Returns (status, headers, body bytes)."""
    if isinstance(body, str):
        body = body.encode()
    headers = {"X-Amz-Target": target if target is not None else f"Kinesis_20131202.{op}"}
    if content_type:
        headers["Content-Type"] = content_type
    req = AWSRequest(method=method, url=endpoint + "/", data=body, headers=headers)
    if sign:
        SigV4Auth(Credentials(TEST_AKID, TEST_SECRET), "kinesis", REGION).add_auth(req)
    prepared = req.prepare()
    u = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, "/", body=body, headers=dict(prepared.headers))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def raw_json(endpoint, op, obj, **kw):
    status, headers, data = raw(endpoint, op, json.dumps(obj), **kw)
    return status, json.loads(data) if data else None


def records_of(client, name, shard_id, **kw):
    it = client.get_shard_iterator(StreamName=name, ShardId=shard_id, **kw)["ShardIterator"]
    return client.get_records(ShardIterator=it)


# ---- the worked example and the data plane ----


def test_worked_example_testing_stream():
    # Its own server: the example's stream name is fixed, and other tests must not have created it.
    s = start_kinesisd()
    try:
        client = make_client(s.endpoint)
        client.create_stream(StreamName="Testing", ShardCount=3)
        wait_active(client, "Testing")
        res = client.put_record(StreamName="Testing", Data=b"Hello", PartitionKey="123456")
        assert res["ShardId"] == "shardId-000000000002"
        assert re.fullmatch(r"\d{56}", res["SequenceNumber"])
        got = records_of(client, "Testing", "shardId-000000000002", ShardIteratorType="TRIM_HORIZON")
        assert [r["Data"] for r in got["Records"]] == [b"Hello"]
    finally:
        s.stop()


def test_partition_key_md5_picks_the_shard(kin):
    name = new_stream(kin, shards=4)
    shards = kin.list_shards(StreamName=name)["Shards"]
    for i in range(40):
        key = f"key-{i}-ключ"
        h = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
        want = [s["ShardId"] for s in shards
                if int(s["HashKeyRange"]["StartingHashKey"]) <= h <= int(s["HashKeyRange"]["EndingHashKey"])]
        assert kin.put_record(StreamName=name, Data=b"x", PartitionKey=key)["ShardId"] == want[0]


def test_every_iterator_type_reads_exact_bytes(kin):
    name = new_stream(kin)
    shard = "shardId-000000000000"
    payloads = [(bytes(range(256)) * 4, "binary"), (b"", "empty"), ("ключ🔑".encode(), "ключ-🔑"),
                (b"\xff" * (MIB - len("big")), "big")]
    seqs = []
    for i, (data, key) in enumerate(payloads):
        if i == 2:
            time.sleep(1.1)  # boto3 sends AT_TIMESTAMP's Timestamp in whole seconds
        seqs.append(kin.put_record(StreamName=name, Data=data, PartitionKey=key)["SequenceNumber"])
    assert seqs == sorted(seqs, key=int) and len(set(seqs)) == len(seqs)

    got = records_of(kin, name, shard, ShardIteratorType="TRIM_HORIZON")
    assert [(r["Data"], r["PartitionKey"], r["SequenceNumber"]) for r in got["Records"]] == \
        [(d, k, s) for (d, k), s in zip(payloads, seqs)]
    assert got["MillisBehindLatest"] == 0
    assert all(isinstance(r["ApproximateArrivalTimestamp"], datetime.datetime) for r in got["Records"])

    got = records_of(kin, name, shard, ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1])
    assert [r["SequenceNumber"] for r in got["Records"]] == seqs[1:]
    got = records_of(kin, name, shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1])
    assert [r["SequenceNumber"] for r in got["Records"]] == seqs[2:]

    first = records_of(kin, name, shard, ShardIteratorType="TRIM_HORIZON")["Records"]
    ts = first[2]["ApproximateArrivalTimestamp"]
    got = records_of(kin, name, shard, ShardIteratorType="AT_TIMESTAMP", Timestamp=ts)
    assert [r["SequenceNumber"] for r in got["Records"]] == seqs[2:]

    latest = kin.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    empty = kin.get_records(ShardIterator=latest)
    assert empty["Records"] == [] and empty["NextShardIterator"]
    kin.put_record(StreamName=name, Data=b"after latest", PartitionKey="k")
    got = kin.get_records(ShardIterator=empty["NextShardIterator"])
    assert [r["Data"] for r in got["Records"]] == [b"after latest"]


def test_get_records_pages_with_limit_and_next_iterator(kin):
    name = new_stream(kin)
    sent = [f"record {i}".encode() for i in range(25)]
    kin.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": "p"} for d in sent])
    it = kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    read, pages = [], 0
    while True:
        res = kin.get_records(ShardIterator=it, Limit=10)
        pages += 1
        read += [r["Data"] for r in res["Records"]]
        assert res["MillisBehindLatest"] >= 0
        it = res["NextShardIterator"]
        if not res["Records"]:
            break
    assert read == sent and pages == 4
    assert res["MillisBehindLatest"] == 0


def test_put_records_500_entries_per_entry_results(kin):
    name = new_stream(kin, shards=3)
    entries = [{"Data": i.to_bytes(2, "big"), "PartitionKey": f"pk{i}"} for i in range(500)]
    res = kin.put_records(StreamName=name, Records=entries)
    assert res["FailedRecordCount"] == 0
    assert len(res["Records"]) == 500
    assert all("ErrorCode" not in r for r in res["Records"])
    by_shard = {}
    for i, r in enumerate(res["Records"]):
        by_shard.setdefault(r["ShardId"], []).append((r["SequenceNumber"], entries[i]["Data"]))
    for shard_id, expect in by_shard.items():
        got, it = [], kin.get_shard_iterator(StreamName=name, ShardId=shard_id,
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while True:
            page = kin.get_records(ShardIterator=it)
            got += [(r["SequenceNumber"], r["Data"]) for r in page["Records"]]
            it = page["NextShardIterator"]
            if not page["Records"]:
                break
        assert got == expect


def test_explicit_hash_key_and_ordering(kin):
    name = new_stream(kin, shards=3)
    top = str(2**128 - 1)
    assert kin.put_record(StreamName=name, Data=b"a", PartitionKey="x", ExplicitHashKey=top)["ShardId"] == \
        "shardId-000000000002"
    assert kin.put_record(StreamName=name, Data=b"a", PartitionKey="x", ExplicitHashKey="0")["ShardId"] == \
        "shardId-000000000000"
    first = kin.put_record(StreamName=name, Data=b"1", PartitionKey="k")
    second = kin.put_record(StreamName=name, Data=b"2", PartitionKey="k",
                            SequenceNumberForOrdering=first["SequenceNumber"])
    assert int(second["SequenceNumber"]) > int(first["SequenceNumber"])


def test_stream_arn_accepted_wherever_aws_accepts_it(kin):
    name = new_stream(kin, shards=2)
    arn = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    assert arn == f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"
    assert kin.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["StreamName"] == name
    assert kin.describe_stream(StreamARN=arn)["StreamDescription"]["StreamName"] == name
    assert len(kin.list_shards(StreamARN=arn)["Shards"]) == 2
    put = kin.put_record(StreamARN=arn, Data=b"by arn", PartitionKey="123456")
    batch = kin.put_records(StreamARN=arn, Records=[{"Data": b"batch", "PartitionKey": "123456"}])
    it = kin.get_shard_iterator(StreamARN=arn, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")
    got = kin.get_records(ShardIterator=it["ShardIterator"], StreamARN=arn)
    assert [r["Data"] for r in got["Records"]] == [b"by arn", b"batch"]
    assert batch["Records"][0]["ShardId"] == put["ShardId"]
    code, msg, _ = error_of(kin.describe_stream_summary, StreamARN=arn.replace(ACCOUNT, "123456789012"))
    assert (code, msg) == ("ResourceNotFoundException", f"Stream {name} under account 123456789012 not found.")
    kin.delete_stream(StreamARN=arn)


# ---- stream metadata ----


def test_create_describe_delete_lifecycle(kin):
    name = new_stream(kin, shards=3)
    d = kin.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamStatus"] == "ACTIVE" and d["HasMoreShards"] is False
    assert d["RetentionPeriodHours"] == 24 and d["EncryptionType"] == "NONE"
    assert d["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert [s["ShardId"] for s in d["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    assert d["Shards"][0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert d["Shards"][1]["HashKeyRange"]["StartingHashKey"] == str(2**128 // 3)
    assert d["Shards"][2]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)
    page = kin.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert len(page["Shards"]) == 2 and page["HasMoreShards"] is True
    rest = kin.describe_stream(StreamName=name, ExclusiveStartShardId="shardId-000000000001")["StreamDescription"]
    assert [s["ShardId"] for s in rest["Shards"]] == ["shardId-000000000002"]
    summary = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 3 and summary["ConsumerCount"] == 0
    kin.delete_stream(StreamName=name)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            kin.describe_stream_summary(StreamName=name)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException"
            break
        time.sleep(0.05)
    else:
        pytest.fail("stream was not deleted")


def test_on_demand_stream_gets_four_shards(kin):
    name = unique_name("od")
    kin.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = wait_active(kin, name)
    assert s["StreamModeDetails"]["StreamMode"] == "ON_DEMAND" and s["OpenShardCount"] == 4


def test_list_streams_pages_with_limit_and_next_token(kin):
    prefix = unique_name("ls")
    for suffix in "abc":
        kin.create_stream(StreamName=f"{prefix}-{suffix}", ShardCount=1)
    first = kin.list_streams(ExclusiveStartStreamName=prefix, Limit=2)
    assert first["StreamNames"] == [f"{prefix}-a", f"{prefix}-b"] and first["HasMoreStreams"] is True
    assert [s["StreamName"] for s in first["StreamSummaries"]] == first["StreamNames"]
    assert all(s["StreamARN"].endswith(s["StreamName"]) for s in first["StreamSummaries"])
    second = kin.list_streams(NextToken=first["NextToken"], Limit=1)
    assert second["StreamNames"] == [f"{prefix}-c"]
    everything = []
    for page in kin.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}):
        everything += page["StreamNames"]
    assert {f"{prefix}-{s}" for s in "abc"} <= set(everything) and everything == sorted(everything)


def test_list_shards_pages_and_filters(kin):
    name = new_stream(kin, shards=7)
    first = kin.list_shards(StreamName=name, MaxResults=3)
    assert [s["ShardId"] for s in first["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    ids = [s["ShardId"] for s in first["Shards"]]
    token = first["NextToken"]
    while token:
        page = kin.list_shards(NextToken=token, MaxResults=3)
        ids += [s["ShardId"] for s in page["Shards"]]
        token = page.get("NextToken")
    assert ids == [f"shardId-00000000000{i}" for i in range(7)]
    after = kin.list_shards(StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000004"})
    assert [s["ShardId"] for s in after["Shards"]] == ["shardId-000000000005", "shardId-000000000006"]
    assert len(kin.list_shards(StreamName=name, ExclusiveStartShardId="shardId-000000000005")["Shards"]) == 1
    assert len(kin.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]) == 7


def test_retention_and_limits(kin):
    name = new_stream(kin)
    kin.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    assert kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["RetentionPeriodHours"] == 72
    code, msg, _ = error_of(kin.decrease_stream_retention_period, StreamName=name, RetentionPeriodHours=100)
    assert (code, msg) == ("InvalidArgumentException",
                           f"Requested retention period (100 hours) for stream {name} can not be longer than existing "
                           "retention period (72 hours). Use IncreaseRetentionPeriod API.")
    kin.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
    limits = kin.describe_limits()
    assert limits["ShardLimit"] >= limits["OpenShardCount"] >= 1


# ---- errors through boto3 ----


def test_resource_errors(kin):
    name = new_stream(kin)
    code, msg, status = error_of(kin.describe_stream, StreamName=name + "-missing")
    assert (code, msg, status) == ("ResourceNotFoundException",
                                   f"Stream {name}-missing under account {ACCOUNT} not found.", 400)
    code, msg, _ = error_of(kin.create_stream, StreamName=name, ShardCount=1)
    assert (code, msg) == ("ResourceInUseException", f"Stream {name} under account {ACCOUNT} already exists.")
    code, msg, _ = error_of(kin.put_record, StreamName=name + "-missing", Data=b"", PartitionKey="a")
    assert (code, msg) == ("ResourceNotFoundException", f"Stream {name}-missing under account {ACCOUNT} not found.")
    code, msg, _ = error_of(kin.get_shard_iterator, StreamName=name, ShardId="shardId-000000000009",
                            ShardIteratorType="LATEST")
    assert (code, msg) == ("ResourceNotFoundException",
                           f"Shard shardId-000000000009 in stream {name} under account {ACCOUNT} does not exist")


def test_invalid_argument_errors(kin):
    name = new_stream(kin)
    code, msg, _ = error_of(kin.put_record, StreamName=name, Data=b"", PartitionKey="a",
                            ExplicitHashKey=str(2**128))
    assert (code, msg) == ("InvalidArgumentException",
                           "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                           f"Specified value was {2**128}")
    code, msg, _ = error_of(kin.get_records, ShardIterator="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert (code, msg) == ("InvalidArgumentException", "Invalid ShardIterator.")
    code, msg, _ = error_of(kin.get_shard_iterator, StreamName=name, ShardId="shardId-0",
                            ShardIteratorType="AFTER_SEQUENCE_NUMBER")
    assert code == "InvalidArgumentException" and msg.endswith(
        "Request specified AFTER_SEQUENCE_NUMBER and no StartingSequenceNumber.")
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    code, msg, _ = error_of(kin.get_shard_iterator, StreamName=name, ShardId="shardId-0",
                            ShardIteratorType="AT_TIMESTAMP", Timestamp=future)
    assert code == "InvalidArgumentException" and msg.startswith(
        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis.")


def test_record_and_request_size_limits(loose):
    name = new_stream(loose)
    code, msg, _ = error_of(loose.put_record, StreamName=name, Data=b"\0" * (MIB + 1), PartitionKey="a")
    assert (code, msg) == ("ValidationException",
                           "1 validation error detected: Value at 'data' failed to satisfy constraint: Member must "
                           "have length less than or equal to 1048576")
    code, msg, _ = error_of(loose.put_record, StreamName=name, Data=b"\0" * MIB, PartitionKey="a")
    assert code == "InvalidArgumentException" and "exceeds the maximum record size of 1048576 bytes" in msg
    six = [{"Data": b"\0" * 1000000, "PartitionKey": "k"} for _ in range(6)]
    code, msg, _ = error_of(loose.put_records, StreamName=name, Records=six)
    assert (code, msg) == ("InvalidArgumentException", "Records size exceeds 5 MB limit")
    many = [{"Data": b"", "PartitionKey": "k"} for _ in range(501)]
    code, msg, _ = error_of(loose.put_records, StreamName=name, Records=many)
    assert code == "ValidationException" and msg.startswith("1 validation error detected: Value '[com.amazonaws")
    assert msg.endswith("at 'records' failed to satisfy constraint: Member must have length less than or equal to 500")


def test_validation_messages_through_boto3(loose):
    code, msg, status = error_of(loose.create_stream, StreamName="bad name!", ShardCount=0)
    assert (code, status) == ("ValidationException", 400)
    assert msg == ("2 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member "
                   "must have value greater than or equal to 1; Value 'bad name!' at 'streamName' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
    code, msg, _ = error_of(loose.put_record, StreamName="s", Data=b"", PartitionKey="k" * 257)
    assert msg == (f"1 validation error detected: Value '{'k' * 257}' at 'partitionKey' failed to satisfy "
                   "constraint: Member must have length less than or equal to 256")


def test_iterators_from_before_a_restart_read_as_expired(data_dir, server, kin):
    name = new_stream(kin)
    kin.put_record(StreamName=name, Data=b"kept", PartitionKey="k")
    it = kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert server.stop() == 0
    server.start()
    code, msg, _ = error_of(kin.get_records, ShardIterator=it)
    assert code == "ExpiredIteratorException"
    assert re.fullmatch(r"Iterator expired\. The iterator was created at time \w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} UTC "
                        r"\d{4} while right now it is \w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2} UTC \d{4} which is further in "
                        r"the future than the tolerated delay of 300000 milliseconds\.", msg)
    got = records_of(kin, name, "shardId-000000000000", ShardIteratorType="TRIM_HORIZON")
    assert [r["Data"] for r in got["Records"]] == [b"kept"]


# ---- the wire: routing, serialization, headers ----


def test_responses_carry_request_id_and_json_type(server):
    status, headers, body = raw(server.endpoint, "ListStreams", "{}")
    assert status == 200
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert UUID_RE.match(headers["x-amzn-requestid"])
    assert json.loads(body)["HasMoreStreams"] in (True, False)


def test_application_json_content_type_is_accepted(server):
    status, headers, _ = raw(server.endpoint, "ListStreams", "{}", content_type="application/json")
    assert status == 200 and headers["content-type"] == "application/x-amz-json-1.1"


def test_type_errors_are_serialization_exceptions(server):
    status, body = raw_json(server.endpoint, "DescribeStream", {"StreamName": 5})
    assert status == 400
    assert body == {"__type": "SerializationException",
                    "Message": "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted "
                               "to an String"}
    status, body = raw_json(server.endpoint, "PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": "23456"})
    assert body["Message"] == ("'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple "
                               "of 4 bytes but found: 5")


def test_wrong_method_and_content_type(server):
    status, headers, body = raw(server.endpoint, "ListStreams", "{}", method="GET")
    assert status == 403 and b"<AccessDeniedException>" in body
    status, _, body = raw(server.endpoint, "ListStreams", "", method="GET", sign=False)
    assert status == 403 and b"<MissingAuthenticationTokenException>" in body
    status, _, body = raw(server.endpoint, "ListStreams", "{}", content_type="text/plain")
    assert status == 404 and body == b"<UnknownOperationException/>\n"


def test_oversized_body_is_refused_and_the_server_stays_healthy(server):
    u = urllib.parse.urlparse(server.endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=30) as sock:
        head = (f"POST / HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/x-amz-json-1.1\r\n"
                "X-Amz-Target: Kinesis_20131202.PutRecords\r\nContent-Length: 100000000\r\n\r\n")
        sock.sendall(head.encode() + b"{" + b" " * 65536)
        reply = b""
        try:
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except ConnectionResetError:
            pass
    status_line = reply.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 413"), reply[:200]
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body["__type"] == "SerializationException" and "exceeds" in body["message"]
    status, _, _ = raw(server.endpoint, "ListStreams", "{}")
    assert status == 200


# ---- the same texts against kinesalite (a peer whose texts were recorded against AWS) ----


def test_unknown_operation_parity(parity_server):
    status, _, body = raw(parity_server.endpoint, "ListStreamz", "{}")
    assert (status, json.loads(body)) == (400, {"__type": "UnknownOperationException"})


def test_malformed_json_parity(parity_server):
    for text in ["hello", "{\"Limit\":"]:
        status, _, body = raw(parity_server.endpoint, "ListStreams", text)
        assert (status, json.loads(body)) == (400, {"__type": "SerializationException"})


def test_missing_authentication_parity(parity_server):
    status, _, body = raw(parity_server.endpoint, "ListStreams", "{}", sign=False)
    assert (status, json.loads(body)) == (400, {"__type": "MissingAuthenticationTokenException",
                                                "message": "Missing Authentication Token"})


def test_put_record_validation_parity(parity_server):
    status, body = raw_json(parity_server.endpoint, "PutRecord", {})
    assert status == 400
    assert body == {"__type": "ValidationException",
                    "message": "3 validation errors detected: "
                               "Value null at 'partitionKey' failed to satisfy constraint: Member must not be null; "
                               "Value null at 'data' failed to satisfy constraint: Member must not be null; "
                               "Value null at 'streamName' failed to satisfy constraint: Member must not be null"}


def test_get_records_validation_parity(parity_server):
    status, body = raw_json(parity_server.endpoint, "GetRecords", {"ShardIterator": "", "Limit": 0})
    assert body == {"__type": "ValidationException",
                    "message": "2 validation errors detected: "
                               "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater "
                               "than or equal to 1; Value '' at 'shardIterator' failed to satisfy constraint: Member "
                               "must have length greater than or equal to 1"}
    status, body = raw_json(parity_server.endpoint, "GetRecords", {"ShardIterator": "bm90IGFuIGl0ZXJhdG9y"})
    assert body == {"__type": "InvalidArgumentException", "message": "Invalid ShardIterator."}


def test_not_found_and_iterator_rules_parity(parity_server):
    client = make_client(parity_server.endpoint)
    name = new_stream(client)
    status, body = raw_json(parity_server.endpoint, "DescribeStream", {"StreamName": name + "x"})
    assert body == {"__type": "ResourceNotFoundException",
                    "message": f"Stream {name}x under account {ACCOUNT} not found."}
    status, body = raw_json(parity_server.endpoint, "GetShardIterator",
                            {"StreamName": name, "ShardId": "shardId-0", "ShardIteratorType": "LATEST",
                             "StartingSequenceNumber": "5"})
    assert body == {"__type": "InvalidArgumentException",
                    "message": "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
                               "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. "
                               "Request specified LATEST and also a StartingSequenceNumber."}
    status, body = raw_json(parity_server.endpoint, "PutRecord",
                            {"StreamName": name, "PartitionKey": "a", "Data": "", "ExplicitHashKey": str(2**128)})
    assert body == {"__type": "InvalidArgumentException",
                    "message": "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. "
                               f"Specified value was {2**128}"}
    status, body = raw_json(parity_server.endpoint, "CreateStream", {"StreamName": name, "ShardCount": 1})
    assert body == {"__type": "ResourceInUseException",
                    "message": f"Stream {name} under account {ACCOUNT} already exists."}
