"""Secrets never leave the client in what it prints (issue 5, "Security"): the secret access key, the session token
and the request signature appear in no output of the `kinesis` tool or of the library's trace and errors, with or
without --debug, whether the call succeeds or fails on the way (retried 5xx, throttling, rejected tokens, resets,
timeouts, truncated answers, PutRecords partial failures) and whether the credentials come from the environment or
from files, including malformed ones.

The fault proxy sits in front of kinesalite and records every request, so each test also proves it could have
caught a leak: the token really went out on the wire, the signature really was computed with the distinctive secret
(botocore recomputes it), and those exact signature values are then searched for in the output.
"""
import base64
import json
import os
import re
import subprocess
import urllib.parse

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import faultproxy as fp
from conftest import BUILD, KINESIS_BIN, boto_kinesis, cli_env, free_port, unique_name, wait_active

FAULTS_BIN = os.path.join(BUILD, "tests", "kn_faults")
AKID = "AKIDSECRETSTEST00042"
SECRET = "kN5ecret/DoNotLeak+Q7vW2xY9zA1bC3dE5fG7h"
TOKEN = "FwoGZXIvYXdzEKN//" + "t0kenDoNotLeak+" * 10 + "Zz=="
WINDOW = 12  # any run of this many characters of a secret counts as a leak


def assert_no_leak(text, *secrets):
    for secret in secrets:
        for form in (secret, urllib.parse.quote(secret, safe=""), base64.b64encode(secret.encode()).decode()):
            for i in range(len(form) - WINDOW + 1):
                assert form[i:i + WINDOW] not in text, f"{form[i:i + WINDOW]!r} (part of a secret) was printed"


def secret_env(endpoint, **extra):
    env = cli_env(endpoint, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    env.update(extra)
    return env


def kinesis(args, env, input=None):
    if not os.path.exists(KINESIS_BIN):
        pytest.fail(f"{KINESIS_BIN} is missing: build first")
    p = subprocess.run([KINESIS_BIN, *args], env=env, input=input, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def signature_of(request):
    auth = fp.header(request["headers"], "authorization")
    return re.search(r"Signature=([0-9a-f]{64})$", auth).group(1)


def recomputed_signature(request, secret, token):
    """The signature botocore computes for the request as the proxy received it, with the given secret."""
    headers = request["headers"]
    auth = fp.header(headers, "authorization")
    akid, _, region, service = re.search(r"Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request", auth).groups()
    signed = re.search(r"SignedHeaders=([^,]+)", auth).group(1).split(";")
    url = f"http://{fp.header(headers, 'host')}{request['path']}"
    req = AWSRequest(method="POST", url=url, data=request["body"],
                     headers={n: v for n, v in headers if n.lower() in signed})
    req.context["timestamp"] = fp.header(headers, "x-amz-date")
    signer = SigV4Auth(Credentials(akid, secret, token), service, region)
    return signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)


def assert_wire_used_the_secrets(requests):
    """What was sent carries the token and a signature made with SECRET: the secrets were in play, so their absence
    from the output means something."""
    assert requests
    for r in requests:
        assert fp.header(r["headers"], "x-amz-security-token") == TOKEN
        assert signature_of(r) == recomputed_signature(r, SECRET, TOKEN)


def assert_output_clean(output, requests, debug):
    assert_no_leak(output, SECRET, TOKEN)
    for r in requests:
        assert signature_of(r) not in output
    if debug:
        assert output.count("Signature=<redacted>") == len(requests)
        assert output.count("X-Amz-Security-Token: <redacted>") == len(requests)


@pytest.fixture
def rig(kinesalite):
    k = boto_kinesis(kinesalite.endpoint)
    stream = unique_name("secrets")
    k.create_stream(StreamName=stream, ShardCount=1)
    wait_active(k, stream)
    with fp.FaultProxy(kinesalite.endpoint) as proxy:
        yield proxy, stream
    k.delete_stream(StreamName=stream)  # kinesalite limits the shards of a whole test session


# ---- kinesis put-record ----

def test_debug_trace_of_a_success_hides_the_secrets(rig):
    proxy, stream = rig
    rc, out = kinesis(["put-record", "--stream-name", stream, "--partition-key", "k", "--data", "x", "--debug"],
                      secret_env(proxy.endpoint))
    assert rc == 0, out
    assert "> POST " in out and "< HTTP/1.1 200" in out
    assert f"Credential={AKID}/" in out  # the key id is shown: it names the key, it grants nothing
    assert_wire_used_the_secrets(proxy.requests)
    assert_output_clean(out, proxy.requests, debug=True)


FAILURES = {
    "retried_500s": ([fp.internal_failure, fp.internal_failure, fp.internal_failure], 3),
    "throttled": ([fp.throttle, fp.throttle, fp.throttle], 3),
    "token_rejected": ([lambda: fp.error(400, "UnrecognizedClientException",
                                         "The security token included in the request is invalid.")], 3),
    "token_expired": ([lambda: fp.error(400, "ExpiredTokenException",
                                        "The security token included in the request is expired")], 3),
    "signature_rejected": ([lambda: fp.error(400, "InvalidSignatureException",
                                             "The request signature we calculated does not match the signature you "
                                             "provided.")], 3),
    "reset": ([lambda: fp.reset("after_read")] * 3, 4),
    "truncated": ([lambda: fp.truncate(forwarded=False)] * 3, 4),
    "timeout": ([fp.stall] * 3, 4),
}


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("failure", FAILURES)
def test_failing_put_record_hides_the_secrets(rig, failure, debug):
    proxy, stream = rig
    makers, exit_code = FAILURES[failure]
    proxy.script([make() for make in makers])
    args = ["put-record", "--stream-name", stream, "--partition-key", "k", "--data", "x", "--max-attempts", "3",
            "--request-timeout-ms", "300"] + (["--debug"] if debug else [])
    rc, out = kinesis(args, secret_env(proxy.endpoint))
    assert rc == exit_code, out
    assert len(proxy.requests) == len(makers)
    assert_wire_used_the_secrets(proxy.requests)
    assert_output_clean(out, proxy.requests, debug)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_unreachable_endpoint_hides_the_secrets(debug):
    rc, out = kinesis(["put-record", "--stream-name", "s", "--partition-key", "k", "--data", "x", "--max-attempts",
                       "2"] + (["--debug"] if debug else []), secret_env(f"http://127.0.0.1:{free_port()}"))
    assert rc == 4, out
    if debug:
        assert out.count("Signature=<redacted>") == 2
    assert_no_leak(out, SECRET, TOKEN)


# ---- kinesis put-records ----

def test_put_records_debug_with_partial_failure_hides_the_secrets(rig):
    proxy, stream = rig
    proxy.script([fp.fail_entries({"k1"})])
    lines = "".join(json.dumps({"Data": base64.b64encode(f"r{i}".encode()).decode(), "PartitionKey": f"k{i}"}) + "\n"
                    for i in range(3))
    rc, out = kinesis(["put-records", "--stream-name", stream, "--records-file", "-", "--debug"],
                      secret_env(proxy.endpoint), input=lines.encode())
    assert rc == 0, out
    assert len(proxy.requests) == 2
    assert_wire_used_the_secrets(proxy.requests)
    assert_output_clean(out, proxy.requests, debug=True)


# ---- credentials from files ----

def test_credentials_file_secrets_are_hidden(rig, tmp_path):
    proxy, stream = rig
    creds = tmp_path / "credentials"
    creds.write_text(f"[leaky]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n"
                     f"aws_session_token = {TOKEN}\n")
    env = cli_env(proxy.endpoint, AWS_SHARED_CREDENTIALS_FILE=str(creds))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    proxy.script([fp.internal_failure()])
    rc, out = kinesis(["put-record", "--stream-name", stream, "--partition-key", "k", "--data", "x", "--profile",
                       "leaky", "--debug"], env)
    assert rc == 0, out
    assert len(proxy.requests) == 2
    assert_wire_used_the_secrets(proxy.requests)
    assert_output_clean(out, proxy.requests, debug=True)


MALFORMED = {
    # A line the parser cannot read holds the secret: the error names the line, never its text.
    "no_equals_sign": "[default]\naws_access_key_id = {akid}\naws_secret_access_key {secret}\n",
    "setting_before_section": "aws_secret_access_key = {secret}\n[default]\naws_access_key_id = {akid}\n",
    "secret_as_section": "[{secret}\naws_access_key_id = {akid}\n",
    # Readable, but incomplete: the error names what is missing, not what is there.
    "partial": "[default]\naws_secret_access_key = {secret}\naws_session_token = {token}\n",
}


@pytest.mark.parametrize("content", MALFORMED)
def test_credentials_file_errors_do_not_echo_secrets(tmp_path, content):
    creds = tmp_path / "credentials"
    creds.write_text(MALFORMED[content].format(akid=AKID, secret=SECRET, token=TOKEN))
    env = cli_env(f"http://127.0.0.1:{free_port()}", AWS_SHARED_CREDENTIALS_FILE=str(creds))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    rc, out = kinesis(["put-record", "--stream-name", "s", "--partition-key", "k", "--data", "x", "--debug"], env)
    assert rc == 5, out
    assert out.startswith("kinesis: ")
    assert_no_leak(out, SECRET, TOKEN)


def test_partial_environment_credentials_do_not_echo_secrets():
    env = cli_env(f"http://127.0.0.1:{free_port()}", AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    env.pop("AWS_ACCESS_KEY_ID")
    rc, out = kinesis(["put-record", "--stream-name", "s", "--partition-key", "k", "--data", "x"], env)
    assert rc == 5, out
    assert_no_leak(out, SECRET, TOKEN)


# ---- the library: its trace and its error messages ----

def test_library_trace_and_errors_hide_the_secrets(rig):
    proxy, stream = rig
    proxy.script([fp.reset("after_read"), fp.service_unavailable(), fp.throttle(),   # call 1 gives up
                  fp.internal_failure()])                                           # call 2 succeeds on retry
    request = {"op": "put_record", "stream_name": stream, "debug": True, "options": {"max_attempts": 3},
               "records": [{"data": base64.b64encode(b"x").decode(), "partition_key": k} for k in ("a", "b")]}
    p = subprocess.run([FAULTS_BIN], input=json.dumps(request).encode(), env=secret_env(proxy.endpoint),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert [c["status"] for c in answer["calls"]] == ["service error", "ok"]
    assert answer["traced_attempts"] == len(proxy.requests) == 5
    assert_wire_used_the_secrets(proxy.requests)
    assert_output_clean(p.stdout.decode() + p.stderr.decode(), proxy.requests, debug=True)
