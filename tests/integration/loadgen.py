"""PutRecord/PutRecords load with an exact ledger of what was sent and what was acknowledged, and the checks that
compare a stream's contents against that ledger. Used by test_crash.py.

Every record carries a payload that is unique in the run (loader id + counter + random bytes), and no payload is ever
re-sent, so a payload found in the stream identifies exactly one send. An attempt ends in one of three ways:
  ack      HTTP 200: each entry has a shard and sequence number (or, in PutRecords, an entry-level error);
  rejected an AWS error response: nothing of the request was stored;
  unknown  the connection failed (the server was killed): the records may or may not have been stored.
"""
import hashlib
import os
import random
import threading
import time
from dataclasses import dataclass

import boto3
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError

ACK, REJECTED, UNKNOWN = "ack", "rejected", "unknown"


@dataclass
class Entry:
    payload: bytes
    partition_key: str
    explicit_hash_key: str = None
    shard: str = None        # set when acknowledged
    seq: str = None
    error: str = None        # PutRecords entry-level ErrorCode


@dataclass
class Attempt:
    op: str                  # PutRecord | PutRecords
    entries: list
    send_t: float            # time.monotonic() just before sending
    done_t: float = 0.0      # just after the outcome was known
    outcome: str = UNKNOWN
    detail: str = ""


def make_client(endpoint, region, akid, secret):
    """boto3 with retries off (one ack = one request) and short timeouts, so a killed server fails a call fast.
    botocore's retries["max_attempts"] counts retries *after* the first request, so "max_attempts": 1 would still
    re-send a call once; total_max_attempts counts every request."""
    cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2,
                                 read_timeout=15, max_pool_connections=4)
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=region, aws_access_key_id=akid,
                        aws_secret_access_key=secret, config=cfg)


class Loader(threading.Thread):
    """One client thread sending PutRecord (batch_max == 1) or PutRecords (1..batch_max entries) until stopped."""

    def __init__(self, loader_id, client, stream, batch_max, stop, seed):
        super().__init__(name=f"loader-{loader_id}", daemon=True)
        self.loader_id, self.client, self.stream, self.batch_max = loader_id, client, stream, batch_max
        self.stop_event = stop
        self.rng = random.Random(seed)
        self.attempts = []
        self.acked = 0
        self.counter = 0

    def _entry(self):
        self.counter += 1
        # Unique prefix, then 0..600 random bytes (NULs and all) so records differ in size and content.
        payload = f"L{self.loader_id}-{self.counter}\x00".encode() + self.rng.randbytes(self.rng.randrange(0, 600))
        pk = f"pk-{self.rng.randrange(1000)}-ключ"
        ehk = str(self.rng.randrange(2**128)) if self.rng.random() < 0.1 else None
        return Entry(payload, pk, ehk)

    def _send(self, a):
        if a.op == "PutRecord":
            e = a.entries[0]
            kw = {"ExplicitHashKey": e.explicit_hash_key} if e.explicit_hash_key else {}
            r = self.client.put_record(StreamName=self.stream, Data=e.payload, PartitionKey=e.partition_key, **kw)
            e.shard, e.seq = r["ShardId"], r["SequenceNumber"]
            return
        recs = [dict(Data=e.payload, PartitionKey=e.partition_key,
                     **({"ExplicitHashKey": e.explicit_hash_key} if e.explicit_hash_key else {})) for e in a.entries]
        r = self.client.put_records(StreamName=self.stream, Records=recs)
        if len(r["Records"]) != len(a.entries):
            raise AssertionError(f"PutRecords answered {len(r['Records'])} entries for {len(a.entries)}")
        for e, res in zip(a.entries, r["Records"]):
            if "ErrorCode" in res:
                e.error = res["ErrorCode"]
            else:
                e.shard, e.seq = res["ShardId"], res["SequenceNumber"]

    def run(self):
        while not self.stop_event.is_set():
            n = 1 if self.batch_max == 1 else self.rng.randrange(1, self.batch_max + 1)
            a = Attempt("PutRecord" if self.batch_max == 1 else "PutRecords", [self._entry() for _ in range(n)],
                        time.monotonic())
            self.attempts.append(a)
            try:
                self._send(a)
                a.outcome = ACK
                self.acked += sum(1 for e in a.entries if e.seq)
            except ClientError as err:
                a.outcome = REJECTED
                a.detail = err.response.get("Error", {}).get("Code", "?")
                for e in a.entries:
                    e.shard = e.seq = None
            except (BotoCoreError, OSError) as err:
                a.outcome = UNKNOWN
                a.detail = type(err).__name__
                for e in a.entries:
                    e.shard = e.seq = None
                time.sleep(0.01)  # the server is down: don't spin
            a.done_t = time.monotonic()


def read_stream(client, stream, timeout=60.0):
    """Every record of every shard from TRIM_HORIZON: {shard_id: [record, ...]} in the order GetRecords gives."""
    out = {}
    deadline = time.monotonic() + timeout
    for shard in [s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"]]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard,
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs = out.setdefault(shard, [])
        while it:
            assert time.monotonic() < deadline, f"reading {shard} took over {timeout}s"
            page = client.get_records(ShardIterator=it, Limit=10000)
            recs += page["Records"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            it = page.get("NextShardIterator")
    return out


def digest(b):
    return hashlib.sha256(b).hexdigest()[:16]


def verify(attempts, stream_contents):
    """Compares what the stream holds with what the loaders sent. Returns (counts, problems); problems is empty when
    every acknowledged record is present with its shard, sequence number and bytes, shards are in strictly increasing
    sequence order, no payload appears that was never sent or that appears twice, nothing rejected appears, and no
    record sent after another was acknowledged has a smaller sequence number on the same shard."""
    sent = {}                       # payload -> (attempt, entry)
    for a in attempts:
        for e in a.entries:
            assert e.payload not in sent, "loaders must never re-send a payload"
            sent[e.payload] = (a, e)

    problems = []
    found = {}                      # payload -> (shard, seq)
    for shard, recs in stream_contents.items():
        prev = -1
        for r in recs:
            seq = int(r["SequenceNumber"])
            if seq <= prev:
                problems.append(f"{shard}: sequence {r['SequenceNumber']} not above the previous one")
            prev = seq
            p = r["Data"]
            if p not in sent:
                problems.append(f"{shard} {r['SequenceNumber']}: payload never sent ({len(p)} bytes, {digest(p)})")
                continue
            if p in found:
                problems.append(f"{shard} {r['SequenceNumber']}: payload {digest(p)} appears twice "
                                f"(first at {found[p][0]} {found[p][1]})")
            found[p] = (shard, r["SequenceNumber"])
            a, e = sent[p]
            if r["PartitionKey"] != e.partition_key:
                problems.append(f"{shard} {r['SequenceNumber']}: partition key {r['PartitionKey']!r} "
                                f"!= sent {e.partition_key!r}")

    counts = {"attempts": len(attempts), "sent": len(sent), "acknowledged": 0, "found": len(found), "lost": 0,
              "unknown_outcome": 0, "unknown_found": 0, "rejected": 0}
    for p, (a, e) in sent.items():
        if e.seq:
            counts["acknowledged"] += 1
            got = found.get(p)
            if got is None:
                counts["lost"] += 1
                problems.append(f"LOST: acknowledged {a.op} record {digest(p)} on {e.shard} seq {e.seq}")
            elif got != (e.shard, e.seq):
                problems.append(f"acknowledged record {digest(p)} was {e.shard} {e.seq}, found at {got}")
        elif a.outcome == ACK or a.outcome == REJECTED:
            counts["rejected"] += 1
            if p in found:
                problems.append(f"record {digest(p)} was refused ({a.detail or e.error}) but is in the stream")
        else:
            counts["unknown_outcome"] += 1
            counts["unknown_found"] += p in found

    problems += _check_real_time_order(sent)
    return counts, problems


def _check_real_time_order(sent):
    """On one shard, a record sent after another was acknowledged must get a greater sequence number, even when a
    restart happened in between."""
    problems = []
    by_shard = {}
    for a, e in sent.values():
        if e.seq:
            by_shard.setdefault(e.shard, []).append((int(e.seq), a.send_t, a.done_t, e))
    for shard, recs in by_shard.items():
        recs.sort(key=lambda r: r[0])
        min_done_after = float("inf")       # earliest ack among records with a greater sequence number
        for seq, send_t, done_t, e in reversed(recs):
            if min_done_after < send_t:
                problems.append(f"{shard}: record {digest(e.payload)} (seq {e.seq}) was sent after a record with a "
                                "greater sequence number had been acknowledged")
            min_done_after = min(min_done_after, done_t)
    return problems


def new_loaders(make, stream, stop, put_record_threads, put_records_threads, batch_max, seed):
    """Loader threads, each with its own client (make() returns one)."""
    loaders = []
    for i in range(put_record_threads + put_records_threads):
        batch = 1 if i < put_record_threads else batch_max
        loaders.append(Loader(i, make(), stream, batch, stop, seed * 1000 + i))
    return loaders


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default
