"""libkinesis under a flaky network and server (issue 5, "The client under faults").

The fault proxy (faultproxy.py) sits between the library and a real backend (kinesalite, moto or kinesisd) and does
what each test scripts: connection resets, stalls, delays, 500/503, throttling, truncated answers, and PutRecords
answers that mark chosen entries failed. The library is driven by tests/tools/faults.c (kn_faults), the tool by
`kinesis`. Attempts are counted where they arrive (at the proxy), and what was stored is read back from the backend
with boto3, so "exactly once" and "duplicated" are facts about the stream, not about what the client says.

Timing bounds carry a generous slack (SLACK_S): the machine is shared, and the tests may run an ASan build.
"""
import base64
import collections
import json
import os
import subprocess
import time

import pytest

import faultproxy as fp
from conftest import BUILD, KINESIS_BIN, boto_kinesis, cli_env, free_port, unique_name, wait_active

FAULTS_BIN = os.path.join(BUILD, "tests", "kn_faults")
SLACK_S = 0.25
PUT_RECORD = "Kinesis_20131202.PutRecord"
PUT_RECORDS = "Kinesis_20131202.PutRecords"
# Fast retries for tests that are not about the backoff itself.
FAST = {"retry_base_delay_ms": 5, "retry_max_backoff_ms": 20}


# ---- helpers ----

def drive(endpoint, request):
    """Runs kn_faults against endpoint and returns its answer."""
    if not os.path.exists(FAULTS_BIN):
        pytest.fail(f"{FAULTS_BIN} is missing: build first")
    p = subprocess.run([FAULTS_BIN], input=json.dumps(request).encode(), env=cli_env(endpoint), capture_output=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def rec(key, data=None):
    data = data if data is not None else f"data of {key}".encode()
    return {"data": base64.b64encode(data).decode(), "partition_key": key}


def put_record(endpoint, stream, keys, **options):
    return drive(endpoint, {"op": "put_record", "stream_name": stream, "records": [rec(k) for k in keys],
                            "options": options})["calls"]


def put_records(endpoint, stream, keys, **options):
    return drive(endpoint, {"op": "put_records", "stream_name": stream, "records": [rec(k) for k in keys],
                            "options": options})["calls"][0]


def keys_sent(request):
    return [r["PartitionKey"] for r in request["json"]["Records"]]


def gaps(requests):
    return [b["t"] - a["t"] for a, b in zip(requests, requests[1:])]


class Rig:
    """A fresh stream on a backend, and a fault proxy in front of it."""

    def __init__(self, server, shards=2):
        self.kinesis = boto_kinesis(server.endpoint)
        self.stream = unique_name("faults")
        self.kinesis.create_stream(StreamName=self.stream, ShardCount=shards)
        wait_active(self.kinesis, self.stream)
        self.proxy = fp.FaultProxy(server.endpoint).__enter__()
        self.endpoint = self.proxy.endpoint

    def close(self):
        """Stops the proxy and deletes the stream (kinesalite limits the shards of a whole test session)."""
        self.proxy.stop()
        self.kinesis.delete_stream(StreamName=self.stream, EnforceConsumerDeletion=True)

    def stored(self):
        """Every record in the stream, as a Counter of (partition key, data) and a map (shard, seq) -> record."""
        counts, by_position = collections.Counter(), {}
        for shard in self.kinesis.describe_stream(StreamName=self.stream)["StreamDescription"]["Shards"]:
            it = self.kinesis.get_shard_iterator(StreamName=self.stream, ShardId=shard["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                page = self.kinesis.get_records(ShardIterator=it, Limit=10000)
                for r in page["Records"]:
                    counts[(r["PartitionKey"], r["Data"])] += 1
                    by_position[(shard["ShardId"], r["SequenceNumber"])] = r
                if not page["Records"]:
                    break
                it = page.get("NextShardIterator")
        return counts, by_position

    def assert_stored_once(self, keys):
        counts, _ = self.stored()
        assert counts == collections.Counter({(k, f"data of {k}".encode()): 1 for k in keys})


@pytest.fixture
def rig(kinesalite):
    """For tests that count requests and time them: kinesalite behind the proxy."""
    r = Rig(kinesalite, shards=1)
    yield r
    r.close()


@pytest.fixture(params=["kinesalite", "moto", "kinesisd"])
def stored_rig(request):
    """For tests that read back what was stored: each peer behind the proxy."""
    r = Rig(request.getfixturevalue(request.param))
    yield r
    r.close()


# Faults that never reach the backend, each with how the client must name it once it gives up.
FAULTS = {
    "internal_failure": (fp.internal_failure, "service error", "InternalFailure", 500, "transient"),
    "service_unavailable": (fp.service_unavailable, "service error", "ServiceUnavailable", 503, "transient"),
    "throttling": (fp.throttle, "service error", "ProvisionedThroughputExceededException", 400, "throttling"),
    "reset_before_read": (lambda: fp.reset("before_read"), "network error", "", 0, "transient"),
    "reset_after_read": (lambda: fp.reset("after_read"), "network error", "", 0, "transient"),
    "truncated_answer": (lambda: fp.truncate(forwarded=False), "network error", "", 0, "transient"),
    "stall": (fp.stall, "timeout", "", 0, "transient"),
}


# ---- PutRecord: retries with backoff, then a clean give-up ----

@pytest.mark.parametrize("fault", FAULTS)
def test_put_record_retries_a_transient_fault_and_stores_once(stored_rig, fault):
    make = FAULTS[fault][0]
    stored_rig.proxy.script([make(), make()])
    (call,) = put_record(stored_rig.endpoint, stored_rig.stream, ["k"], max_attempts=3, request_timeout_ms=500,
                         **FAST)
    assert call["status"] == "ok", call
    assert call["attempts"] == 3
    assert len(stored_rig.proxy.requests_for(PUT_RECORD)) == 3
    counts, by_position = stored_rig.stored()
    assert counts == {("k", b"data of k"): 1}
    assert (call["shard_id"], call["sequence_number"]) in by_position


@pytest.mark.parametrize("fault", FAULTS)
def test_put_record_gives_up_after_max_attempts_with_the_last_error(rig, fault):
    make, status, type_, http_status, retry_class = FAULTS[fault]
    script = [make() for _ in range(4)]
    rig.proxy.script(script)
    (call,) = put_record(rig.endpoint, rig.stream, ["k"], max_attempts=4, request_timeout_ms=300, **FAST)
    assert call["status"] == status, call
    err = call["error"]
    assert (err["type"], err["http_status"], err["retry_class"]) == (type_, http_status, retry_class)
    assert call["attempts"] == err["attempts"] == 4
    assert len(rig.proxy.requests_for(PUT_RECORD)) == 4
    if type_:  # the last answer's error, not the first's
        assert err["request_id"] == script[-1]["request_id"]
        assert err["message"] == script[-1]["message"]
    rig.assert_stored_once([])


def test_give_up_keeps_the_last_of_different_errors(rig):
    # The reset comes first, on a fresh connection: see test_max_attempts_1_sends_once_even_on_a_reused_connection.
    script = [fp.reset("after_read"), fp.internal_failure(), fp.service_unavailable()]
    rig.proxy.script(script)
    (call,) = put_record(rig.endpoint, rig.stream, ["k"], max_attempts=3, **FAST)
    assert call["status"] == "service error"
    assert call["error"]["type"] == "ServiceUnavailable"
    assert call["error"]["request_id"] == script[-1]["request_id"]
    assert call["attempts"] == 3


@pytest.mark.parametrize("fault", ["reset_after_read", "truncated_answer", "stall"])
def test_network_errors_name_their_cause(rig, fault):
    """Once the retries are spent, a local failure's message says what happened on the wire."""
    words = {"reset_after_read": "reset", "truncated_answer": "bytes remaining", "stall": "timed out"}[fault]
    rig.proxy.script([FAULTS[fault][0]()])
    (call,) = put_record(rig.endpoint, rig.stream, ["k"], max_attempts=1, request_timeout_ms=300)
    assert words in call["error"]["message"].lower(), call


def test_refused_connection_is_a_network_error_retried():
    port = free_port()  # nothing listens there
    (call,) = put_record(f"http://127.0.0.1:{port}", "s", ["k"], max_attempts=3, **FAST)
    assert call["status"] == "network error"
    assert call["attempts"] == 3 and call["error"]["retry_class"] == "transient"
    assert "connect" in call["error"]["message"].lower()


def test_backoff_between_attempts_is_jittered_and_bounded(rig):
    """Full jitter: the wait before attempt n+1 is uniform in [0, min(cap, base * 2^(n-1))]. Each gap must stay under
    its ceiling; their sum shows the client does wait (without backoff the five gaps take a few ms in all; with it,
    a sum under 100 ms has a probability of about 2e-5)."""
    base, cap = 100, 800
    rig.proxy.script([fp.internal_failure() for _ in range(6)])
    (call,) = put_record(rig.endpoint, rig.stream, ["k"], max_attempts=6, retry_base_delay_ms=base,
                         retry_max_backoff_ms=cap)
    assert call["attempts"] == 6
    seen = gaps(rig.proxy.requests_for(PUT_RECORD))
    ceilings = [min(cap, base * 2 ** i) / 1000 for i in range(5)]
    assert len(seen) == 5
    for gap, ceiling in zip(seen, ceilings):
        assert gap <= ceiling + SLACK_S, (seen, ceilings)
    assert sum(seen) >= 0.1, seen


def test_backoff_cap_is_honoured(rig):
    """A base of 10 s capped at 50 ms: uncapped, the four waits would almost surely take seconds."""
    rig.proxy.script([fp.throttle() for _ in range(5)])
    (call,) = put_record(rig.endpoint, rig.stream, ["k"], max_attempts=5, retry_base_delay_ms=10000,
                         retry_max_backoff_ms=50)
    assert call["attempts"] == 5
    assert all(g <= 0.05 + SLACK_S for g in gaps(rig.proxy.requests_for(PUT_RECORD)))
    assert call["elapsed_ms"] <= 4 * 50 + SLACK_S * 1000


# ---- timeouts ----

def test_request_timeout_bounds_each_attempt(rig):
    timeout_ms, attempts = 400, 3
    rig.proxy.script([fp.stall() for _ in range(attempts)])
    (call,) = put_record(rig.endpoint, rig.stream, ["k"], max_attempts=attempts, request_timeout_ms=timeout_ms,
                         **FAST)
    assert call["status"] == "timeout" and call["attempts"] == attempts
    # Each attempt waited for its full timeout, and not much longer: attempts * timeout + backoffs (<= 5 + 10 ms).
    # (libcurl's timer may fire a millisecond early: 5% of margin below.)
    assert 0.95 * attempts * timeout_ms <= call["elapsed_ms"] <= attempts * timeout_ms + 15 + SLACK_S * 1000
    assert len(rig.proxy.requests_for(PUT_RECORD)) == attempts


def test_connect_timeout_bounds_each_attempt():
    port, close = fp.blackhole_listener()
    try:
        (call,) = put_record(f"http://127.0.0.1:{port}", "s", ["k"], max_attempts=2, connect_timeout_ms=300, **FAST)
    finally:
        close()
    assert call["status"] == "timeout" and call["attempts"] == 2
    assert "connect" in call["error"]["message"].lower()
    assert 0.95 * 600 <= call["elapsed_ms"] <= 600 + 5 + SLACK_S * 1000


def test_slow_answer_within_the_timeout_is_not_retried(stored_rig):
    stored_rig.proxy.script([fp.delay(300)])
    (call,) = put_record(stored_rig.endpoint, stored_rig.stream, ["k"], request_timeout_ms=2000)
    assert call["status"] == "ok" and call["attempts"] == 1
    assert call["elapsed_ms"] >= 300
    assert len(stored_rig.proxy.requests_for(PUT_RECORD)) == 1
    stored_rig.assert_stored_once(["k"])


# ---- what is never retried ----

NEVER_RETRIED = [
    (400, "ValidationException", "1 validation error detected: Value at 'partitionKey' failed to satisfy constraint"),
    (400, "InvalidArgumentException", "Invalid argument"),
    (400, "UnrecognizedClientException", "The security token included in the request is invalid."),
    (400, "InvalidSignatureException", "The request signature we calculated does not match the signature you "
                                       "provided. Check your AWS Secret Access Key and signing method. Consult the "
                                       "service documentation for details."),
    (400, "ExpiredTokenException", "The security token included in the request is expired"),
    (403, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    (400, "AccessDeniedException", "User is not authorized to perform: kinesis:PutRecord"),
    (400, "KMSAccessDeniedException", "KMS access denied"),
]


@pytest.mark.parametrize("status,type_,message", NEVER_RETRIED, ids=[t for _, t, _ in NEVER_RETRIED])
def test_validation_and_auth_errors_are_not_retried(rig, status, type_, message):
    rig.proxy.script([fp.error(status, type_, message), fp.forward()])
    (call,) = put_record(rig.endpoint, rig.stream, ["k"], max_attempts=5, **FAST)
    assert call["status"] == "service error"
    assert (call["error"]["type"], call["error"]["message"], call["error"]["http_status"]) == (type_, message, status)
    assert call["error"]["retry_class"] == "never"
    assert call["attempts"] == 1
    assert len(rig.proxy.requests_for(PUT_RECORD)) == 1
    rig.assert_stored_once([])


def test_backend_resource_not_found_is_not_retried(stored_rig):
    (call,) = put_record(stored_rig.endpoint, unique_name("missing"), ["k"], max_attempts=5, **FAST)
    assert call["error"]["type"] == "ResourceNotFoundException" and call["attempts"] == 1
    assert len(stored_rig.proxy.requests_for(PUT_RECORD)) == 1


def test_invalid_input_sends_nothing(rig):
    (call,) = put_record(rig.endpoint, rig.stream, ["k" * 257], max_attempts=5)
    assert call["status"] == "invalid argument" and call["attempts"] == 0
    assert call["error"]["message"].startswith("PartitionKey: ")
    assert rig.proxy.requests == []


# ---- connections ----

def test_pool_recovers_after_a_reset_and_keeps_connections_alive(rig):
    """After a reset the next attempt opens a new connection, and later calls reuse that one."""
    rig.proxy.script([fp.reset("after_read")])
    calls = put_record(rig.endpoint, rig.stream, ["a", "b", "c"], **FAST)
    assert [c["status"] for c in calls] == ["ok"] * 3
    assert [c["attempts"] for c in calls] == [2, 1, 1]
    assert rig.proxy.connections == 2
    assert [r["conn"] for r in rig.proxy.requests] == [1, 2, 2, 2]


def test_max_attempts_1_sends_once_even_on_a_reused_connection(stored_rig):
    """The second call goes out on the kept-alive connection of the first; the proxy reads it and resets. With
    max_attempts = 1 the client must report the network error and send nothing more."""
    stored_rig.proxy.script([fp.forward(), fp.reset("after_read")])
    first, second = put_record(stored_rig.endpoint, stored_rig.stream, ["a", "b"], max_attempts=1)
    assert first["status"] == "ok"
    requests = stored_rig.proxy.requests_for(PUT_RECORD)
    assert len(requests) == 2, [(r["conn"], r["action"]) for r in requests]
    assert second["status"] == "network error" and second["attempts"] == 1


# ---- PutRecords: only the failed entries are resent ----

KEYS = [f"k{i}" for i in range(10)]


def test_put_records_resends_only_failed_entries(stored_rig):
    stored_rig.proxy.script([fp.fail_entries({"k2", "k5", "k7"}), fp.fail_entries({"k5"}, code="InternalFailure")])
    call = put_records(stored_rig.endpoint, stored_rig.stream, KEYS, max_attempts=3, **FAST)
    assert call["status"] == "ok" and call["failed_count"] == 0 and call["attempts"] == 3
    sent = [keys_sent(r) for r in stored_rig.proxy.requests_for(PUT_RECORDS)]
    assert sent == [KEYS, ["k2", "k5", "k7"], ["k5"]]
    counts, by_position = stored_rig.stored()
    assert counts == collections.Counter({(k, f"data of {k}".encode()): 1 for k in KEYS})
    for key, result in zip(KEYS, call["results"]):  # each result points at its own record
        assert result["ok"], result
        assert by_position[(result["shard_id"], result["sequence_number"])]["PartitionKey"] == key


def test_put_records_gives_up_per_entry_after_max_attempts(stored_rig):
    stored_rig.proxy.script([fp.fail_entries({"k1", "k3"}) for _ in range(3)])
    call = put_records(stored_rig.endpoint, stored_rig.stream, KEYS, max_attempts=3, **FAST)
    assert call["status"] == "ok" and call["failed_count"] == 2 and call["attempts"] == 3
    for key, result in zip(KEYS, call["results"]):
        if key in ("k1", "k3"):
            assert not result["ok"]
            assert result["error_code"] == "ProvisionedThroughputExceededException"
            assert result["error_message"].startswith("Rate exceeded for shard")
        else:
            assert result["ok"]
    sent = [keys_sent(r) for r in stored_rig.proxy.requests_for(PUT_RECORDS)]
    assert sent == [KEYS, ["k1", "k3"], ["k1", "k3"]]
    stored_rig.assert_stored_once([k for k in KEYS if k not in ("k1", "k3")])


def test_put_records_does_not_resend_a_non_retryable_entry(stored_rig):
    stored_rig.proxy.script([fp.fail_entries({"k4": "KMSAccessDeniedException",
                                              "k6": "ProvisionedThroughputExceededException"})])
    call = put_records(stored_rig.endpoint, stored_rig.stream, KEYS, max_attempts=3, **FAST)
    assert call["failed_count"] == 1
    assert call["results"][4]["error_code"] == "KMSAccessDeniedException"
    sent = [keys_sent(r) for r in stored_rig.proxy.requests_for(PUT_RECORDS)]
    assert sent == [KEYS, ["k6"]]
    stored_rig.assert_stored_once([k for k in KEYS if k != "k4"])


def test_put_records_whole_request_failure_resends_only_what_is_pending(stored_rig):
    stored_rig.proxy.script([fp.fail_entries({"k0", "k9"}), fp.internal_failure(), fp.stall()])
    call = put_records(stored_rig.endpoint, stored_rig.stream, KEYS, max_attempts=4, request_timeout_ms=300, **FAST)
    assert call["status"] == "ok" and call["failed_count"] == 0 and call["attempts"] == 4
    sent = [keys_sent(r) for r in stored_rig.proxy.requests_for(PUT_RECORDS)]
    assert sent == [KEYS, ["k0", "k9"], ["k0", "k9"], ["k0", "k9"]]
    stored_rig.assert_stored_once(KEYS)


def test_put_records_request_failure_keeps_earlier_successes(stored_rig):
    """Gives up on a whole-request failure after a partial success: the written entries stay ok, the others carry
    the last failure."""
    script = [fp.fail_entries({"k0", "k1"}), fp.service_unavailable(), fp.service_unavailable()]
    stored_rig.proxy.script(script)
    call = put_records(stored_rig.endpoint, stored_rig.stream, KEYS, max_attempts=3, **FAST)
    assert call["status"] == "service error" and call["attempts"] == 3
    assert call["error"]["type"] == "ServiceUnavailable"
    assert call["error"]["request_id"] == script[-1]["request_id"]
    assert call["failed_count"] == 2
    assert [r["ok"] for r in call["results"]] == [False, False] + [True] * 8
    assert {r["error_code"] for r in call["results"][:2]} == {"ServiceUnavailable"}
    stored_rig.assert_stored_once(KEYS[2:])


def test_put_records_timeout_then_success(stored_rig):
    stored_rig.proxy.script([fp.stall()])
    call = put_records(stored_rig.endpoint, stored_rig.stream, KEYS, max_attempts=2, request_timeout_ms=300, **FAST)
    assert call["status"] == "ok" and call["attempts"] == 2
    stored_rig.assert_stored_once(KEYS)


# ---- at least once: when an answer is lost after the backend stored the record ----

LOST_ANSWERS = {
    "reset_after_forward": lambda: fp.reset("after_forward"),
    "truncated_after_forward": lambda: fp.truncate(forwarded=True),
}


@pytest.mark.parametrize("fault", LOST_ANSWERS)
def test_lost_answer_is_retried_and_stored_twice(stored_rig, fault):
    """The backend stored the record but its answer never arrived whole: the client cannot tell this from a request
    that was lost, so it retries and the record is stored twice. This is AWS's at-least-once (docs/client.md)."""
    stored_rig.proxy.script([LOST_ANSWERS[fault]()])
    (call,) = put_record(stored_rig.endpoint, stored_rig.stream, ["k"], **FAST)
    assert call["status"] == "ok" and call["attempts"] == 2
    counts, by_position = stored_rig.stored()
    assert counts == {("k", b"data of k"): 2}
    assert (call["shard_id"], call["sequence_number"]) in by_position


def test_answer_later_than_the_timeout_is_stored_twice(stored_rig):
    """The proxy holds the first attempt past the client's timeout, then forwards it anyway."""
    stored_rig.proxy.script([fp.delay(800)])
    (call,) = put_record(stored_rig.endpoint, stored_rig.stream, ["k"], request_timeout_ms=300, **FAST)
    assert call["status"] == "ok" and call["attempts"] == 2
    deadline = time.monotonic() + 10
    while stored_rig.stored()[0][("k", b"data of k")] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored_rig.stored()[0] == {("k", b"data of k"): 2}


def test_put_records_entry_reported_failed_but_stored_is_duplicated(stored_rig):
    """The control for test_put_records_resends_only_failed_entries: when the service stored an entry but reported
    it failed, resending it duplicates it. The client resends exactly the reported failures, nothing else."""
    stored_rig.proxy.script([fp.fail_entries({"k3"}, forward_failed=True)])
    call = put_records(stored_rig.endpoint, stored_rig.stream, KEYS, **FAST)
    assert call["failed_count"] == 0 and call["attempts"] == 2
    counts, _ = stored_rig.stored()
    assert counts == collections.Counter({(k, f"data of {k}".encode()): 2 if k == "k3" else 1 for k in KEYS})


# ---- the tool names the cause and exits with its code ----

def cli_put(endpoint, stream, *args):
    if not os.path.exists(KINESIS_BIN):
        pytest.fail(f"{KINESIS_BIN} is missing: build first")
    return subprocess.run([KINESIS_BIN, "put-record", "--stream-name", stream, "--partition-key", "k", "--data", "x",
                           *args], env=cli_env(endpoint), capture_output=True, timeout=60)


def test_cli_service_failure_after_retries(rig):
    script = [fp.service_unavailable(), fp.service_unavailable()]
    rig.proxy.script(script)
    p = cli_put(rig.endpoint, rig.stream, "--max-attempts", "2")
    assert p.returncode == 3
    assert p.stderr.decode() == (f"kinesis: ServiceUnavailable: Service Unavailable (HTTP 503, request id "
                                 f"{script[-1]['request_id']}, 2 attempts)\n")
    assert len(rig.proxy.requests_for(PUT_RECORD)) == 2


def test_cli_reset_is_a_network_error(rig):
    rig.proxy.script([fp.reset("before_read") for _ in range(2)])
    p = cli_put(rig.endpoint, rig.stream, "--max-attempts", "2")
    assert p.returncode == 4
    line = p.stderr.decode()
    assert line.startswith("kinesis: network error: ") and line.endswith(" (2 attempts)\n"), line


def test_cli_stall_is_a_timeout(rig):
    rig.proxy.script([fp.stall()])
    start = time.monotonic()
    p = cli_put(rig.endpoint, rig.stream, "--max-attempts", "1", "--request-timeout-ms", "300")
    assert time.monotonic() - start < 0.3 + 2 * SLACK_S + 1.0  # process start-up included
    assert p.returncode == 4
    assert p.stderr.decode().startswith("kinesis: timeout: ")


def test_cli_throttling_then_success(stored_rig):
    stored_rig.proxy.script([fp.throttle()])
    p = cli_put(stored_rig.endpoint, stored_rig.stream, "--max-attempts", "2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().startswith("shardId-")
    assert len(stored_rig.proxy.requests_for(PUT_RECORD)) == 2
    assert stored_rig.stored()[0] == {("k", b"x"): 1}
