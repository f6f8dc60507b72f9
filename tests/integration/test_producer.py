"""The batching producer (include/kinesis/producer.h) against servers nobody on this team wrote: tests/tools/producer.c
puts records through a kn_producer, and boto3 reads every shard back to check that each record arrived exactly once,
with its bytes, in the shard and at the sequence number its callback reported."""
import os
import subprocess

import pytest

from conftest import BUILD, boto_kinesis, cli_env, unique_name, wait_active

PRODUCER_BIN = os.path.join(BUILD, "tests", "kn_producer")


def record_data(i, size):
    head = i.to_bytes(4, "big")
    return head + bytes((i * 31 + j * 7) & 0xFF for j in range(4, size))


def run_producer(endpoint, stream, *args, timeout=120):
    if not os.path.exists(PRODUCER_BIN):
        pytest.fail(f"{PRODUCER_BIN} is missing: build first")
    proc = subprocess.run([PRODUCER_BIN, "--stream", stream, *map(str, args)], env=cli_env(endpoint),
                          capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.splitlines()
    assert lines and lines[-1].startswith("done "), proc.stderr
    results = {}
    for line in lines[:-1]:
        i, outcome, rest = line.split(" ", 2)
        results[int(i)] = (outcome, rest)
    ok, failed, waits = map(int, lines[-1].split()[1:])
    return proc.returncode, results, ok, failed, waits


def read_stream(client, stream):
    """Every record of every shard, as {(shard id, sequence number): (partition key, data)}. Keyed by shard too:
    moto numbers each shard's records from 1."""
    stored = {}
    shards = client.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            out = client.get_records(ShardIterator=it, Limit=10000)
            for r in out["Records"]:
                where = (shard["ShardId"], r["SequenceNumber"])
                assert where not in stored
                stored[where] = (r["PartitionKey"], r["Data"])
            it = out.get("NextShardIterator")
            if not out["Records"] and out.get("MillisBehindLatest", 0) == 0:
                break
    return stored


def make_stream(peer, shards=3):
    client = boto_kinesis(peer.endpoint)
    name = unique_name("producer")
    client.create_stream(StreamName=name, ShardCount=shards)
    wait_active(client, name)
    return client, name


def check_delivery(client, name, results, count, size, keys):
    stored = read_stream(client, name)
    assert len(stored) == count, "every record stored exactly once"
    last_seq_by_key = {}
    for i in range(count):
        outcome, rest = results[i]
        assert outcome == "ok", rest
        shard_id, seq = rest.split()
        assert (shard_id, seq) in stored, f"record {i}: reported {shard_id} {seq} is not in the stream"
        got_key, got_data = stored[(shard_id, seq)]
        assert got_key == f"clé-{i % keys}"
        assert got_data == record_data(i, size)
        # One key, one shard, one sending thread: put order is storage order.
        if got_key in last_seq_by_key:
            assert int(seq) > last_seq_by_key[got_key]
        last_seq_by_key[got_key] = int(seq)


def test_batches_arrive_exactly_once_with_their_bytes(peer):
    client, name = make_stream(peer)
    rc, results, ok, failed, _ = run_producer(peer.endpoint, name, "--count", 1500, "--size", 64, "--keys", 17,
                                              "--batch", 200, "--linger-ms", 5)
    assert (rc, ok, failed) == (0, 1500, 0)
    check_delivery(client, name, results, 1500, 64, 17)


def test_full_buffer_pushes_back_and_still_delivers_everything(peer):
    client, name = make_stream(peer, shards=2)
    # 4 KiB records against a 64 KiB buffer: the putter must wait for deliveries many times.
    rc, results, ok, failed, waits = run_producer(peer.endpoint, name, "--count", 300, "--size", 4096, "--keys", 5,
                                                  "--max-buffered", 65536)
    assert (rc, ok, failed) == (0, 300, 0)
    assert waits > 0
    check_delivery(client, name, results, 300, 4096, 5)


def test_large_records_split_by_request_size(peer):
    client, name = make_stream(peer, shards=1)
    # 12 records of 512 KiB: at most 9 fit in one 5 MiB PutRecords, so at least two requests carry them.
    rc, results, ok, failed, _ = run_producer(peer.endpoint, name, "--count", 12, "--size", 512 * 1024, "--keys", 3,
                                              "--linger-ms", 50)
    assert (rc, ok, failed) == (0, 12, 0)
    check_delivery(client, name, results, 12, 512 * 1024, 3)


def test_missing_stream_fails_every_record(peer):
    rc, results, ok, failed, _ = run_producer(peer.endpoint, unique_name("absent"), "--count", 20)
    assert (rc, ok, failed) == (1, 0, 20)
    for i in range(20):
        outcome, rest = results[i]
        assert outcome == "fail"
        assert rest.startswith("ResourceNotFoundException ")
