"""Crash safety (issue 5): several clients put records while the test kills kinesisd with SIGKILL at random moments
and restarts it on the same --data-dir; at the end every acknowledged record must be there, in order, with its
sequence number and bytes, and nothing must be there that was never sent.

KN_CRASH_KILLS sets the number of kills (default 20; CI runs the default, a longer mode sets more).
KN_CRASH_SEED fixes the random schedule (default: time-based, printed so a failure can be replayed).
KN_CRASH_TARGET=kinesalite runs the same harness against kinesalite backed by LevelDB (--path), to show the harness
is not tailored to kinesisd. (kinesalite passes too: a SIGKILL loses only the process, and its writes are already in
the page cache. Neither this test nor kinesisd's fdatasync can be checked against power loss here.)

The test_verify_* tests feed the checker records that were lost, duplicated, invented, reordered or re-numbered, to
show that the crash test fails when any of that happens.
"""
import os
import random
import signal
import threading
import time

import pytest

import loadgen
from conftest import KINESISD_BIN, NODE_MODULES, REGION, TEST_AKID, TEST_SECRET, Server, free_port, wait_active

KILLS = loadgen.env_int("KN_CRASH_KILLS", 20)
SEED = loadgen.env_int("KN_CRASH_SEED", int(time.time()))
TARGET = os.environ.get("KN_CRASH_TARGET", "kinesisd")
SHARDS = 4


class CrashServer:
    """The server under test on one port and one data directory, killed and restarted by its PID."""

    def __init__(self, data_dir, log_path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        if TARGET == "kinesalite":
            self.cmd = ["node", os.path.join(NODE_MODULES, "kinesalite", "cli.js"), "--port", str(self.port),
                        "--path", data_dir, "--createStreamMs", "0", "--deleteStreamMs", "0"]
        else:
            if not os.path.exists(KINESISD_BIN):
                pytest.fail(f"{KINESISD_BIN} is missing: build first")
            self.cmd = [KINESISD_BIN, "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", data_dir]
        self.log_path = log_path
        self.server = None
        self.starts = 0

    def start(self):
        self.server = Server(TARGET, self.cmd, self.port, log_path=self.log_path).start()
        self.starts += 1

    def kill(self):
        """SIGKILL by PID; returns once the process is gone (its port and files released)."""
        proc = self.server.proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self.server.log.close()

    def stop(self):
        if self.server:
            return self.server.stop()

    def log_tail(self, n=40):
        with open(self.log_path, "rb") as f:
            return b"".join(f.readlines()[-n:]).decode(errors="replace")


def acked(loaders):
    return sum(ld.acked for ld in loaders)


def wait_acks(loaders, at_least, timeout):
    """Waits until the loaders together have acknowledged at_least more records than they had on the call."""
    deadline = time.monotonic() + timeout
    since = acked(loaders)
    while acked(loaders) < since + at_least:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_sigkill_during_load_loses_no_acknowledged_record(tmp_path):
    rng = random.Random(SEED)
    print(f"\ncrash test: target={TARGET} kills={KILLS} seed={SEED}")
    srv = CrashServer(str(tmp_path / "data"), str(tmp_path / "server.log"))
    srv.start()
    stop = threading.Event()
    loaders = []
    try:
        make = lambda: loadgen.make_client(srv.endpoint, REGION, TEST_AKID, TEST_SECRET)
        admin = make()
        stream = f"crash-{os.getpid()}"
        admin.create_stream(StreamName=stream, ShardCount=SHARDS)
        wait_active(admin, stream)

        # 2 PutRecord clients and 2 PutRecords clients (1..100 entries a call): on a 2-core machine more threads
        # add only GIL contention, not concurrency at the server.
        loaders = loadgen.new_loaders(make, stream, stop, 2, 2, 100, SEED)
        for ld in loaders:
            ld.start()

        stalled_epochs = early_kills = 0
        for k in range(KILLS):
            if rng.random() < 0.15:
                # Sometimes kill right after start-up, while clients reconnect and the first commits run on a
                # freshly recovered log.
                early_kills += 1
                time.sleep(rng.uniform(0, 0.05))
            else:
                # Otherwise under load: after this instance has acknowledged something, at a random moment.
                if not wait_acks(loaders, rng.randrange(1, 200), timeout=15):
                    stalled_epochs += 1
                time.sleep(rng.uniform(0, 0.4))
            srv.kill()
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0, 0.2))   # sometimes let clients hit a closed port for a while
            srv.start()
            # The stream survives every crash as it was, and is usable at once.
            d = admin.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
            assert d["StreamStatus"] == "ACTIVE" and d["OpenShardCount"] == SHARDS, d
        assert stalled_epochs == 0, f"{stalled_epochs} server instances acknowledged nothing within 15 s:\n" + \
            srv.log_tail()

        # Let the last instance take load, then stop the clients and crash once more with nothing in flight.
        wait_acks(loaders, 200, timeout=15)
        stop.set()
        for ld in loaders:
            ld.join(30)
            assert not ld.is_alive(), f"{ld.name} did not stop"
        srv.kill()
        srv.start()

        contents = loadgen.read_stream(make(), stream)
        attempts = [a for ld in loaders for a in ld.attempts]
        counts, problems = loadgen.verify(attempts, contents)
        counts["kills"] = KILLS + 1
        counts["starts"] = srv.starts
        counts["early_kills"] = early_kills
        print("crash test counts: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        assert not problems, f"{len(problems)} problems (seed {SEED}); first ones:\n" + "\n".join(problems[:20])
        assert counts["lost"] == 0
        # The test must have exercised something: acknowledged records in every server instance on average.
        assert counts["acknowledged"] >= 10 * (KILLS + 1), counts
        if TARGET == "kinesisd":
            rc = srv.stop()
            assert rc == 0, f"kinesisd exited {rc} on SIGTERM after the crashes:\n" + srv.log_tail()
    finally:
        stop.set()
        for ld in loaders:
            ld.join(30)
        srv.stop()


# --- the checker itself --------------------------------------------------------------------------------------------

def _ledger():
    """Two acknowledged PutRecords entries on shard 0, one rejected PutRecord, one with an unknown outcome."""
    E, A = loadgen.Entry, loadgen.Attempt
    a1 = A("PutRecords", [E(b"L0-1\x00a", "k", shard="shardId-000000000000", seq="100"),
                          E(b"L0-2\x00b", "k", shard="shardId-000000000000", seq="200")], 1.0, 2.0, loadgen.ACK)
    a2 = A("PutRecord", [E(b"L1-1\x00c", "k")], 3.0, 4.0, loadgen.REJECTED, "ValidationException")
    a3 = A("PutRecord", [E(b"L1-2\x00d", "k")], 5.0, 6.0, loadgen.UNKNOWN, "ConnectionClosedError")
    return [a1, a2, a3]


def _rec(seq, data, pk="k"):
    return {"SequenceNumber": seq, "Data": data, "PartitionKey": pk}


GOOD = [_rec("100", b"L0-1\x00a"), _rec("200", b"L0-2\x00b"), _rec("300", b"L1-2\x00d")]


def _problems(records):
    return loadgen.verify(_ledger(), {"shardId-000000000000": records})


def test_verify_accepts_a_correct_stream():
    counts, problems = _problems(GOOD)
    assert problems == []
    assert counts["acknowledged"] == 2 and counts["lost"] == 0 and counts["unknown_found"] == 1


@pytest.mark.parametrize("records, expect", [
    (GOOD[1:], "LOST"),                                                        # acknowledged record missing
    ([GOOD[0], _rec("250", b"L0-2\x00b"), GOOD[2]], "found at"),               # re-numbered
    ([GOOD[1], GOOD[0], GOOD[2]], "not above"),                                # out of order
    (GOOD + [_rec("400", b"L0-1\x00a")], "appears twice"),                     # duplicated
    (GOOD + [_rec("400", b"garbage")], "never sent"),                          # invented
    (GOOD + [_rec("400", b"L1-1\x00c")], "refused"),                           # rejected but stored
    ([GOOD[0], GOOD[1], _rec("300", b"L1-2\x00d", "other")], "partition key"),  # key changed
])
def test_verify_detects(records, expect):
    counts, problems = _problems(records)
    assert any(expect in p for p in problems), problems


def test_verify_detects_sequence_going_back_after_a_restart():
    """A record sent after another was acknowledged gets a smaller sequence number (a counter reset by a crash)."""
    E, A = loadgen.Entry, loadgen.Attempt
    first = A("PutRecord", [E(b"L0-1\x00a", "k", shard="shardId-000000000000", seq="500")], 1.0, 2.0, loadgen.ACK)
    later = A("PutRecord", [E(b"L0-2\x00b", "k", shard="shardId-000000000000", seq="100")], 3.0, 4.0, loadgen.ACK)
    stream = {"shardId-000000000000": [_rec("100", b"L0-2\x00b"), _rec("500", b"L0-1\x00a")]}
    _, problems = loadgen.verify([first, later], stream)
    assert any("greater sequence number had been acknowledged" in p for p in problems), problems
