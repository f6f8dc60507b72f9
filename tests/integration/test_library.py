"""libkinesis itself (kn_put_record, kn_put_records) against moto and kinesalite, through the small driver
tests/tools/put.c (built as kn_put): it reads a JSON request on stdin, calls the library with configuration from the
environment, and prints each call's result. boto3 reads every record back to check the exact bytes arrived where the
library said. Peer quirks are listed in test_cli.py."""
import base64
import hashlib
import json
import os
import subprocess

import pytest

from conftest import BUILD, boto_kinesis, cli_env, free_port, unique_name, wait_active

PUT_BIN = os.path.join(BUILD, "tests", "kn_put")
MIB = 1024 * 1024


def drive(endpoint, request, env=None):
    if not os.path.exists(PUT_BIN):
        pytest.fail(f"{PUT_BIN} is missing: build first")
    p = subprocess.run([PUT_BIN], input=json.dumps(request).encode(), env=env or cli_env(endpoint),
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def rec(data, key, **extra):
    return {"data": base64.b64encode(data).decode(), "partition_key": key, **extra}


def make_stream(kinesis, shards=1):
    name = unique_name("lib")
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    wait_active(kinesis, name)
    return name


def all_records(kinesis, stream):
    """Every record of the stream, by (shard id, sequence number)."""
    out = {}
    for shard in kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            page = kinesis.get_records(ShardIterator=it, Limit=10000)
            for r in page["Records"]:
                out[(shard["ShardId"], r["SequenceNumber"])] = r
            if not page["Records"]:
                break
            it = page.get("NextShardIterator")
    return out


def test_put_record_binary_and_unicode(peer):
    k = boto_kinesis(peer.endpoint)
    stream = make_stream(k, 3)
    inputs = [(b"\x00" * 10 + bytes(range(256)), "nul"), (b"", "empty"), ("🔑 clé".encode(), "ключ-🔑")]
    answer = drive(peer.endpoint, {"op": "put_record", "stream_name": stream,
                                   "records": [rec(d, pk) for d, pk in inputs]})
    results = answer["results"]
    assert [r["ok"] for r in results] == [True] * 3, results
    stored = all_records(k, stream)
    assert len(stored) == 3
    for (data, pk), r in zip(inputs, results):
        assert r["attempts"] == 1
        got = stored[(r["shard_id"], r["sequence_number"])]
        assert got["Data"] == data and got["PartitionKey"] == pk


def test_put_record_one_mib(peer):
    k = boto_kinesis(peer.endpoint)
    stream = make_stream(k)
    data = hashlib.sha512(b"lib").digest() * (MIB // 64)
    data = data[:MIB - 2]  # + the 2-byte partition key = exactly 1 MiB
    answer = drive(peer.endpoint, {"op": "put_record", "stream_name": stream,
                                   "records": [rec(data, "pk"), rec(data + b"!", "pk")]})
    ok, too_big = answer["results"]
    assert ok["ok"], ok
    assert not too_big["ok"]
    assert too_big["status"] == "invalid argument" and too_big["attempts"] == 0
    assert too_big["message"].startswith("Data: data (1048575 bytes) plus partition key (2 bytes) exceed")
    stored = all_records(k, stream)
    assert list(stored) == [(ok["shard_id"], ok["sequence_number"])]
    assert stored[(ok["shard_id"], ok["sequence_number"])]["Data"] == data


def test_put_record_service_error_is_not_retried(peer):
    answer = drive(peer.endpoint, {"op": "put_record", "stream_name": unique_name("missing"),
                                   "records": [rec(b"x", "k")]})
    r = answer["results"][0]
    assert not r["ok"]
    assert r["status"] == "service error"
    assert r["type"] == "ResourceNotFoundException"
    assert r["http_status"] == 400
    assert r["request_id"]
    assert r["attempts"] == 1


def test_put_record_network_error_is_retried():
    answer = drive(None, {"op": "put_record", "stream_name": "s", "max_attempts": 3, "records": [rec(b"x", "k")]},
                   env=cli_env(f"http://127.0.0.1:{free_port()}"))
    r = answer["results"][0]
    assert r["status"] == "network error" and r["attempts"] == 3 and r["http_status"] == 0


def test_put_records_500_entries_in_order(peer):
    k = boto_kinesis(peer.endpoint)
    stream = make_stream(k, 4)
    entries = [(i.to_bytes(2, "big") + bytes([i % 251]) * (i % 97), f"k{i}-é") for i in range(500)]
    answer = drive(peer.endpoint, {"op": "put_records", "stream_name": stream,
                                   "records": [rec(d, pk) for d, pk in entries]})
    assert "error" not in answer, answer
    assert answer["failed_count"] == 0 and answer["attempts"] == 1
    results = answer["results"]
    assert len(results) == 500
    stored = all_records(k, stream)
    assert len(stored) == 500
    for (data, pk), r in zip(entries, results):
        assert r["ok"], r
        got = stored[(r["shard_id"], r["sequence_number"])]
        assert got["Data"] == data and got["PartitionKey"] == pk


def test_put_records_explicit_hash_keys(peer):
    k = boto_kinesis(peer.endpoint)
    stream = make_stream(k, 4)
    shards = k.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]
    entries = [rec(s["ShardId"].encode(), "same", explicit_hash_key=s["HashKeyRange"]["StartingHashKey"])
               for s in shards]
    answer = drive(peer.endpoint, {"op": "put_records", "stream_name": stream, "records": entries})
    assert answer["failed_count"] == 0, answer
    for s, r in zip(shards, answer["results"]):
        assert r["shard_id"] == s["ShardId"]
    stored = all_records(k, stream)
    for (shard, _), got in stored.items():
        assert got["Data"] == shard.encode()


def test_put_records_validation_names_the_entry(peer):
    answer = drive(peer.endpoint, {"op": "put_records", "stream_name": "s",
                                   "records": [rec(b"a", "ok"), rec(b"b", "x" * 257)]})
    assert answer["error"]["status"] == "invalid argument"
    assert answer["error"]["message"].startswith("Records[1].PartitionKey: ")
    assert answer["error"]["attempts"] == 0
    assert answer["failed_count"] == 2


def test_one_client_from_several_threads(peer):
    k = boto_kinesis(peer.endpoint)
    stream = make_stream(k, 2)
    answer = drive(peer.endpoint, {"op": "put_record", "stream_name": stream, "threads": 4, "repeat": 25,
                                   "records": [rec(b"t1", "a"), rec(b"t2", "b")]})
    results = answer["results"]
    assert len(results) == 200
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    keys = {(r["shard_id"], r["sequence_number"]) for r in results}
    assert len(keys) == 200
    stored = all_records(k, stream)
    assert set(stored) == keys
    assert sorted(r["Data"] for r in stored.values()) == [b"t1"] * 100 + [b"t2"] * 100
