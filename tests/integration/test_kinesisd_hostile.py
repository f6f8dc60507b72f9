"""Hostile request bodies through the real kinesisd (issue 5 "Hostile and malformed input"): invalid UTF-8 and control
characters in every string member of PutRecord, PutRecords, CreateStream and GetShardIterator, deeply nested JSON,
huge numbers, duplicate keys, numbers where strings belong and strings where numbers belong, bodies that are not one
JSON object, and wrong Content-Types. Every request is signed for real (botocore's SigV4Auth over the exact bytes
sent by http.client) against a kinesisd that only accepts the test key, so each one reaches the stage it is meant
to test. Each must get AWS's error type (or, where the input is legal for AWS, be served correctly), and afterwards
the server is still up and a record put at the start still reads back.

Also: the `kinesis` tool under valgrind (success, service error, validation error, network error) with no leak and
no memory error.
"""
import base64
import http.client
import json
import os
import re
import shutil
import subprocess

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import BUILD, KINESIS_BIN, REGION, TEST_AKID, TEST_SECRET, boto_kinesis, cli_env, free_port, \
    start_kinesisd

STREAM = "hostile"
SENTINEL = b"put before the hostile requests"



# ---------------------------------------------------------------- the server and its clients


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("kinesisd-hostile")
    creds = d / "credentials"
    creds.write_text(f"[default]\naws_access_key_id = {TEST_AKID}\naws_secret_access_key = {TEST_SECRET}\n")
    s = start_kinesisd(str(d / "data"), extra=["--credentials", str(creds), "--create-stream", f"{STREAM}:2"])
    c = boto_kinesis(s.endpoint)
    s.sentinel = c.put_record(StreamName=STREAM, PartitionKey="sentinel", Data=SENTINEL)
    yield s
    assert s.stop() == 0, open(s.log_path, errors="replace").read()[-3000:]


def assert_healthy(server):
    """Still running, still serving, and the record put at the start is still there, byte for byte."""
    assert server.proc.poll() is None, "kinesisd died"
    c = boto_kinesis(server.endpoint)
    it = c.get_shard_iterator(StreamName=STREAM, ShardId=server.sentinel["ShardId"],
                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                              StartingSequenceNumber=server.sentinel["SequenceNumber"])["ShardIterator"]
    first = c.get_records(ShardIterator=it, Limit=1)["Records"][0]
    assert (first["SequenceNumber"], first["Data"]) == (server.sentinel["SequenceNumber"], SENTINEL)


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.closed = status is None
        try:
            self.json = json.loads(body) if body else {}
        except ValueError:
            self.json = {}
        m = re.match(rb"<(\w+)", body or b"")
        self.type = self.json.get("__type") or (m.group(1).decode() if m else None)
        self.message = self.json.get("message", self.json.get("Message"))

    def __repr__(self):
        return "closed" if self.closed else f"{self.status} {self.body[:200]!r}"


def call(server, target, body, content_type="application/x-amz-json-1.1", sign=True):
    """POSTs the exact bytes `body`, signed with SigV4 over those bytes, on a fresh connection. A connection the
    server closed without an answer comes back as Answer.closed."""
    headers = {"Content-Type": content_type} if content_type is not None else {}
    if target:
        headers["X-Amz-Target"] = f"Kinesis_20131202.{target}"
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=headers)
    if sign:
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(TEST_AKID, TEST_SECRET), "kinesis",
                                REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
        r = conn.getresponse()
        return Answer(r.status, dict(r.getheaders()), r.read())
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return Answer(None, {}, b"")
    finally:
        conn.close()


def expect(answer, status, *types):
    assert not answer.closed and answer.status == status and answer.type in types, answer
    if answer.status == 200:
        return
    assert answer.headers.get("x-amzn-RequestId"), answer.headers


# ---------------------------------------------------------------- every string member, every hostile value

# Bodies as templates: the member under test holds @@, replaced by the raw bytes of a hostile JSON string content.
TEMPLATES = {
    "PutRecord": {
        "StreamName": b'{"StreamName":"@@","PartitionKey":"k","Data":"AA=="}',
        "PartitionKey": b'{"StreamName":"hostile","PartitionKey":"@@","Data":"AA=="}',
        "Data": b'{"StreamName":"hostile","PartitionKey":"k","Data":"@@"}',
        "ExplicitHashKey": b'{"StreamName":"hostile","PartitionKey":"k","Data":"AA==","ExplicitHashKey":"@@"}',
        "SequenceNumberForOrdering":
            b'{"StreamName":"hostile","PartitionKey":"k","Data":"AA==","SequenceNumberForOrdering":"@@"}',
        "StreamARN": b'{"StreamARN":"@@","PartitionKey":"k","Data":"AA=="}',
    },
    "PutRecords": {
        "StreamName": b'{"StreamName":"@@","Records":[{"PartitionKey":"k","Data":"AA=="}]}',
        "StreamARN": b'{"StreamARN":"@@","Records":[{"PartitionKey":"k","Data":"AA=="}]}',
        "Records.PartitionKey": b'{"StreamName":"hostile","Records":[{"PartitionKey":"@@","Data":"AA=="}]}',
        "Records.Data": b'{"StreamName":"hostile","Records":[{"PartitionKey":"k","Data":"@@"}]}',
        "Records.ExplicitHashKey":
            b'{"StreamName":"hostile","Records":[{"PartitionKey":"k","Data":"AA==","ExplicitHashKey":"@@"}]}',
    },
    "CreateStream": {
        "StreamName": b'{"StreamName":"@@","ShardCount":1}',
        "StreamModeDetails.StreamMode": b'{"StreamName":"hostile-mode","StreamModeDetails":{"StreamMode":"@@"}}',
    },
    "GetShardIterator": {
        "StreamName": b'{"StreamName":"@@","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}',
        "StreamARN": b'{"StreamARN":"@@","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}',
        "ShardId": b'{"StreamName":"hostile","ShardId":"@@","ShardIteratorType":"TRIM_HORIZON"}',
        "ShardIteratorType": b'{"StreamName":"hostile","ShardId":"shardId-000000000000","ShardIteratorType":"@@"}',
        "StartingSequenceNumber": b'{"StreamName":"hostile","ShardId":"shardId-000000000000",'
                                  b'"ShardIteratorType":"AT_SEQUENCE_NUMBER","StartingSequenceNumber":"@@"}',
    },
}

INVALID_UTF8 = {
    "lone-continuation": b"a\x80b",
    "0xff": b"a\xffb",
    "overlong-nul": b"a\xc0\x80b",
    "overlong-slash": b"a\xe0\x80\xafb",
    "utf8-surrogate": b"a\xed\xa0\x80b",
    "beyond-U+10FFFF": b"a\xf4\x90\x80\x80b",
    "truncated": b"a\xe2\x82",
}
# Valid JSON strings that carry control characters: legal text for AWS's parser, judged by each member's own rules.
CONTROL_ESCAPED = {
    "escaped-U+0001": b"a\\u0001b",
    "escaped-newline": b"a\\nb",
    "escaped-U+001F": b"a\\u001fb",
    "DEL": b"a\x7fb",
    "C1-U+0085": b"a\xc2\x85b",
    "bidi-override": b"a\xe2\x80\xaeb",
}
ESCAPED_NUL = b"a\\u0000b"
LONE_SURROGATE = b"a\\ud800b"

# Members whose values are free Unicode text: control characters are data there (AWS accepts any Unicode).
FREE_TEXT = {"PartitionKey", "Records.PartitionKey"}
BLOBS = {"Data", "Records.Data"}

MEMBERS = [(op, member) for op, members in TEMPLATES.items() for member in members]


def fill(op, member, content):
    return TEMPLATES[op][member].replace(b"@@", content)


def read_back(server, answer):
    """The record a successful PutRecord/PutRecords answer names, as stored."""
    result = answer.json["Records"][0] if "Records" in answer.json else answer.json
    c = boto_kinesis(server.endpoint)
    it = c.get_shard_iterator(StreamName=STREAM, ShardId=result["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
                              StartingSequenceNumber=result["SequenceNumber"])["ShardIterator"]
    return c.get_records(ShardIterator=it, Limit=1)["Records"][0]


@pytest.mark.parametrize("op,member", MEMBERS, ids=[f"{op}.{m}" for op, m in MEMBERS])
def test_hostile_strings_in_every_member(server, op, member):
    problems = []

    def check(label, content, ok):
        answer = call(server, op, fill(op, member, content))
        try:
            ok(answer, content)
        except AssertionError as e:
            problems.append(f"{label}: {e or answer}")

    def serialization(answer, content):
        expect(answer, 400, "SerializationException")

    def judged_by_member(answer, content):
        if member in BLOBS:  # not base64
            expect(answer, 400, "SerializationException")
        elif member in FREE_TEXT:  # stored as sent
            expect(answer, 200, None)
            assert "FailedRecordCount" not in answer.json or answer.json["FailedRecordCount"] == 0, answer
            stored = read_back(server, answer)
            assert stored["PartitionKey"] == json.loads(b'"' + content + b'"'), stored["PartitionKey"]
        else:  # names, ARNs, ids, numbers as text, enums: their pattern or enum refuses it
            expect(answer, 400, "ValidationException")
            assert answer.message.startswith("1 validation error detected: Value '"), answer

    for label, content in INVALID_UTF8.items():
        check(label, content, serialization)
    for label, content in CONTROL_ESCAPED.items():
        check(label, content, judged_by_member)
    check("escaped-NUL", ESCAPED_NUL, serialization)  # kinesisd refuses U+0000 rather than cut a C string at it
    check("lone-surrogate", LONE_SURROGATE,
          lambda a, c: expect(a, 400, "SerializationException", "ValidationException"))
    assert not problems, "\n".join(problems)
    assert_healthy(server)


@pytest.mark.parametrize("raw", [b"a\x01b", b"a\x1fb", b"a\tb"], ids=["U+0001", "U+001F", "tab"])
def test_raw_control_characters_in_strings_are_not_json(server, raw):
    expect(call(server, "PutRecord", fill("PutRecord", "PartitionKey", raw)), 400, "SerializationException")


# ---------------------------------------------------------------- the shape of the JSON


def put_body(**members):
    body = {"StreamName": STREAM, "PartitionKey": "k", "Data": "AA=="}
    body.update(members)
    return json.dumps(body).encode()


@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b'{"StreamName":"hostile","PartitionKey":"k","Data":"AA==","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"StreamName":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
], ids=["open-arrays", "closed-arrays", "open-objects", "closed-objects", "nested-unknown-member",
        "nested-member"])
def test_deeply_nested_json(server, body):
    expect(call(server, "PutRecord", body), 400, "SerializationException")
    assert_healthy(server)


@pytest.mark.parametrize("body", [
    b"", b"[]", b'"a string"', b"42", b"null", b"true",
    put_body() + b"x", put_body() + put_body(), b"{" + b'"a":1,' * 10 + b"}", b'{"a":1 "b":2}', b"{'a':1}",
    b'{"StreamName":"hostile","PartitionKey":"k","Data":"AA==",}', b'{"Data":NaN}', b'{"Data":Infinity}',
    b'{"Data":0x10}', b'{"Data":"AA==" /* c */}',
], ids=["empty", "array", "string", "number", "null", "true", "trailing-garbage", "two-objects", "trailing-comma",
        "missing-comma", "single-quotes", "trailing-comma-member", "NaN", "Infinity", "hex", "comment"])
def test_bodies_that_are_not_one_json_object(server, body):
    expect(call(server, "PutRecord", body), 400, "SerializationException")
    assert_healthy(server)


@pytest.mark.parametrize("op,body,types", [
    ("CreateStream", b'{"StreamName":"huge-1","ShardCount":1e999}', {"ValidationException", "LimitExceededException"}),
    ("CreateStream", b'{"StreamName":"huge-2","ShardCount":-1e999}', {"ValidationException"}),
    ("CreateStream", b'{"StreamName":"huge-3","ShardCount":1e-400}', {"ValidationException"}),
    ("CreateStream", b'{"StreamName":"huge-4","ShardCount":123456789012345678901234567890}',
     {"ValidationException", "LimitExceededException"}),
    ("CreateStream", b'{"StreamName":"huge-5","ShardCount":' + b"9" * 100_000 + b"}",
     {"ValidationException", "LimitExceededException"}),
    ("CreateStream", b'{"StreamName":"huge-6","ShardCount":-' + b"9" * 100_000 + b"}", {"ValidationException"}),
    ("CreateStream", b'{"StreamName":"huge-7","ShardCount":4294967297}', {"ValidationException",
                                                                          "LimitExceededException"}),
    ("GetRecords", b'{"ShardIterator":"AAAA","Limit":1e999}', {"ValidationException"}),
    ("GetShardIterator", b'{"StreamName":"hostile","ShardId":"shardId-000000000000",'
                         b'"ShardIteratorType":"AT_TIMESTAMP","Timestamp":1e999}', {"InvalidArgumentException"}),
    ("IncreaseStreamRetentionPeriod", b'{"StreamName":"hostile","RetentionPeriodHours":1e999}',
     {"InvalidArgumentException", "ValidationException"}),
    ("ListShards", b'{"StreamName":"hostile","MaxResults":-1e999}', {"ValidationException"}),
    ("PutRecord", b'{"StreamName":"hostile","PartitionKey":"k","Data":"AA==","ExplicitHashKey":"' + b"9" * 100_000
     + b'"}', {"ValidationException"}),
], ids=["shards-1e999", "shards--1e999", "shards-1e-400", "shards-30-digits", "shards-100k-digits",
        "shards--100k-digits", "shards-2^32+1", "limit-1e999", "timestamp-1e999", "retention-1e999",
        "maxresults--1e999", "hash-key-100k-digits"])
def test_huge_numbers(server, op, body, types):
    expect(call(server, op, body), 400, *types)
    streams = boto_kinesis(server.endpoint).list_streams()["StreamNames"]
    assert not [s for s in streams if s.startswith("huge-")], streams  # nothing was created
    assert_healthy(server)


def test_huge_strings(server):
    expect(call(server, "PutRecord", put_body(StreamName="s" * 1_000_000)), 400, "ValidationException")
    expect(call(server, "PutRecord", put_body(PartitionKey="k" * 1_000_000)), 400, "ValidationException")
    expect(call(server, "CreateStream", json.dumps({"StreamName": "x", "ShardCount": 1,
                                                    "Tags": {"k" * 100_000: "v"}}).encode()),
           400, "ValidationException")
    # A member kinesisd does not know, however large, is ignored, as AWS does.
    answer = call(server, "PutRecord", put_body(Unknown="u" * 5_000_000, PartitionKey="big-unknown"))
    expect(answer, 200, None)
    assert read_back(server, answer)["PartitionKey"] == "big-unknown"
    assert_healthy(server)


def test_many_members(server):
    members = b",".join(b'"m%d":%d' % (i, i) for i in range(200_000))
    answer = call(server, "PutRecord", b'{"StreamName":"hostile","PartitionKey":"many","Data":"AA==",' + members
                  + b"}")
    expect(answer, 200, None)
    assert read_back(server, answer)["PartitionKey"] == "many"
    assert_healthy(server)


@pytest.mark.parametrize("body,alternatives", [
    (b'{"StreamName":"hostile","PartitionKey":"k","Data":"AQ==","Data":"Ag=="}', [b"\x01", b"\x02"]),
    (b'{"StreamName":"hostile","PartitionKey":"first","PartitionKey":"second","Data":"AQ=="}', ["first", "second"]),
    (b'{"StreamName":"hostile","StreamName":"no-such-stream","PartitionKey":"k","Data":"AQ=="}', None),
    (b'{"StreamName":"no-such-stream","StreamName":"hostile","PartitionKey":"k","Data":"AQ=="}', None),
], ids=["Data", "PartitionKey", "StreamName-then-missing", "missing-then-StreamName"])
def test_duplicate_keys(server, body, alternatives):
    """JSON leaves duplicate members undefined. Parsers differ on which one counts (cJSON, under kinesisd: the first;
    JSON.parse, under kinesalite: the last); either is acceptable, but the answer must be a clean one, and a record
    that is stored must be exactly one of the values sent."""
    answer = call(server, "PutRecord", body)
    if answer.status == 400:
        expect(answer, 400, "ResourceNotFoundException", "SerializationException")
    else:
        expect(answer, 200, None)
        stored = read_back(server, answer)
        if alternatives and isinstance(alternatives[0], bytes):
            assert stored["Data"] in alternatives
        elif alternatives:
            assert stored["PartitionKey"] in alternatives
    assert_healthy(server)


WRONG_TYPES = {"true": b"true", "false": b"false", "number": b"12", "float": b"1.5", "huge": b"1e999",
               "array": b'["a"]', "object": b'{"a":"b"}', "empty-array": b"[]", "empty-object": b"{}"}
STRING_MEMBERS = [("PutRecord", "StreamName"), ("PutRecord", "PartitionKey"), ("PutRecord", "Data"),
                  ("PutRecord", "ExplicitHashKey"), ("PutRecords", "Records.PartitionKey"),
                  ("CreateStream", "StreamName"), ("GetShardIterator", "ShardId"),
                  ("GetShardIterator", "ShardIteratorType")]


@pytest.mark.parametrize("op,member", STRING_MEMBERS, ids=[f"{op}.{m}" for op, m in STRING_MEMBERS])
def test_other_types_where_strings_belong(server, op, member):
    problems = []
    for label, value in WRONG_TYPES.items():
        answer = call(server, op, fill(op, member, b"").replace(b'""', value, 1))
        if answer.closed or answer.status != 400 or answer.type != "SerializationException":
            problems.append(f"{label}: {answer}")
        elif label in ("number", "float", "huge") and member not in BLOBS:
            if "TruncatingBigNumber can not be converted to an String" not in (answer.message or ""):
                problems.append(f"{label}: {answer}")
    assert not problems, "\n".join(problems)
    assert_healthy(server)


@pytest.mark.parametrize("op,body", [
    ("CreateStream", b'{"StreamName":"typed-1","ShardCount":"2"}'),
    ("CreateStream", b'{"StreamName":"typed-2","ShardCount":true}'),
    ("CreateStream", b'{"StreamName":"typed-3","ShardCount":[2]}'),
    ("CreateStream", b'{"StreamName":"typed-4","ShardCount":{"n":2}}'),
    ("GetRecords", b'{"ShardIterator":"AAAA","Limit":"10"}'),
    ("GetShardIterator", b'{"StreamName":"hostile","ShardId":"shardId-000000000000",'
                         b'"ShardIteratorType":"AT_TIMESTAMP","Timestamp":"yesterday"}'),
    ("IncreaseStreamRetentionPeriod", b'{"StreamName":"hostile","RetentionPeriodHours":"48"}'),
    ("ListShards", b'{"StreamName":"hostile","MaxResults":"5"}'),
    ("PutRecords", b'{"StreamName":"hostile","Records":"AA=="}'),
    ("PutRecords", b'{"StreamName":"hostile","Records":{"PartitionKey":"k","Data":"AA=="}}'),
    ("PutRecords", b'{"StreamName":"hostile","Records":[1,2]}'),
    ("PutRecords", b'{"StreamName":"hostile","Records":["AA=="]}'),
], ids=["shards-string", "shards-bool", "shards-array", "shards-object", "limit-string", "timestamp-string",
        "retention-string", "maxresults-string", "records-string", "records-object", "records-numbers",
        "records-strings"])
def test_other_types_where_numbers_and_lists_belong(server, op, body):
    expect(call(server, op, body), 400, "SerializationException")
    streams = boto_kinesis(server.endpoint).list_streams()["StreamNames"]
    assert not [s for s in streams if s.startswith("typed-")], streams
    assert_healthy(server)


# ---------------------------------------------------------------- the envelope


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/cbor", "application/x-amz-json-1.0", "application/x-amz-cbor-1.1",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json-seq", "json", "",
    None,
], ids=["text", "cbor", "json-1.0", "amz-cbor", "form", "multipart", "json-seq", "bare-word", "empty", "missing"])
def test_wrong_content_type(server, content_type):
    """AWS answers a body it cannot deserialise by its Content-Type with 404 <UnknownOperationException/> (403
    AccessDeniedException when there is no target either), before looking at the signature or the body."""
    answer = call(server, "PutRecord", put_body(PartitionKey="wrong-type"), content_type=content_type)
    expect(answer, 404, "UnknownOperationException")
    answer = call(server, None, put_body(PartitionKey="wrong-type"), content_type=content_type)
    expect(answer, 403, "AccessDeniedException")
    assert_healthy(server)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-amz-json-1.1; charset=utf-8",
                                          "APPLICATION/X-AMZ-JSON-1.1"])
def test_json_content_types_aws_accepts(server, content_type):
    answer = call(server, "PutRecord", put_body(PartitionKey="ctype"), content_type=content_type)
    expect(answer, 200, None)
    assert read_back(server, answer)["PartitionKey"] == "ctype"


def test_unsigned_hostile_body_is_still_refused_for_what_it_is(server):
    """The body is judged before the signature (AWS's order): garbage is a SerializationException even unsigned,
    and a well-formed unsigned request is a MissingAuthenticationTokenException."""
    expect(call(server, "PutRecord", b"[" * 1000, sign=False), 400, "SerializationException")
    expect(call(server, "PutRecord", put_body(), sign=False), 400, "MissingAuthenticationTokenException")
    assert_healthy(server)


def test_data_survives_a_restart_after_the_hostile_requests(server):
    """Last in this file (pytest keeps file order): everything above happened; the server stops cleanly, and a new
    one on the same data directory still has the sentinel record."""
    assert_healthy(server)
    assert server.stop() == 0
    server.start()
    assert_healthy(server)


# ---------------------------------------------------------------- the kinesis tool under valgrind


def sanitized_build():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            return "KN_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


VALGRIND_CASES = {  # options replacing the defaults, and the exit status the tool must give
    "success": ({}, 0),
    "service-error": ({"--stream-name": "no-such-stream"}, 3),
    "validation-error": ({"--partition-key": "k" * 257}, 2),
    "network-error": ({"--endpoint-url": "http://127.0.0.1:{closed}"}, 4),
}


@pytest.mark.skipif(sanitized_build(), reason="valgrind cannot run AddressSanitizer binaries: this test runs in the "
                                              "normal build's suite")
@pytest.mark.parametrize("case", list(VALGRIND_CASES))
def test_kinesis_tool_under_valgrind(server, tmp_path, case):
    valgrind = shutil.which("valgrind")
    if not valgrind:
        pytest.fail("valgrind is not installed: run scripts/install-deps.sh test")
    overrides, want = VALGRIND_CASES[case]
    options = {"--endpoint-url": server.endpoint, "--stream-name": STREAM, "--partition-key": "vg",
               "--data-base64": base64.b64encode(b"under valgrind").decode(), "--max-attempts": "1"}
    options.update({k: v.replace("{closed}", str(free_port())) for k, v in overrides.items()})
    args = [a for kv in options.items() for a in kv]
    log = tmp_path / "valgrind.log"
    p = subprocess.run([valgrind, "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
                        "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=9",
                        f"--log-file={log}", KINESIS_BIN, "put-record", *args],
                       env=cli_env(), capture_output=True, timeout=300)
    report = log.read_text(errors="replace")
    assert p.returncode == want, f"exit {p.returncode}, want {want}\n{p.stderr.decode()}\n{report[-4000:]}"
    assert "ERROR SUMMARY: 0 errors" in report, report[-4000:]
    assert "definitely lost" not in report or "definitely lost: 0 bytes" in report, report[-4000:]
    if case == "success":
        assert p.stdout.decode().startswith("shardId-")
