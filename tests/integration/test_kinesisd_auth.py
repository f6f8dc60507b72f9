"""kinesisd's authentication, triggered by real signed requests (botocore's signer, the aws CLI, curl --aws-sigv4):
every refusal has AWS's exact __type and message, HTTP 400. kinesisd runs with --credentials holding a permanent key,
a temporary key (session token, expiration in the future) and an expired one, and with --log-level debug so the test
can check that no secret ever reaches its log.
"""
import datetime
import json
import os
import re
import socket
import subprocess
import time

import boto3
import botocore
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import NODE_MODULES, REGION, ROOT, TEST_AKID, TEST_SECRET, cli_env, start_kinesisd, \
    unique_name

TEMP_AKID = "ASIAKINESISDTEMP0001"
TEMP_SECRET = "tEmPoRaRy/SeCrEt/KeY/For/kinesisd/tests01"
TEMP_TOKEN = "IQoJb3JpZ2luX2VjEKINESISDTESTTOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="
OLD_AKID = "ASIAKINESISDEXPIRED1"
OLD_SECRET = "eXpIrEd/SeCrEt/KeY/For/kinesisd/tests000001"
OLD_TOKEN = "IQoJb3JpZ2luX2VjEKINESISDEXPIREDTOKEN//////wEaCXVzLWVhc3QtMSJHMEUCIQ=="
SECRETS = [TEST_SECRET, TEMP_SECRET, TEMP_TOKEN, OLD_SECRET, OLD_TOKEN]

MSG_SIGNATURE = ("The request signature we calculated does not match the signature you provided. Check your AWS "
                 "Secret Access Key and signing method. Consult the service documentation for details.")
MSG_UNRECOGNIZED = "The security token included in the request is invalid."



def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("kinesisd-auth")
    now = datetime.datetime.now(datetime.timezone.utc)
    creds = d / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {TEST_AKID}\naws_secret_access_key = {TEST_SECRET}\n\n"
        f"[temporary]\naws_access_key_id = {TEMP_AKID}\naws_secret_access_key = {TEMP_SECRET}\n"
        f"aws_session_token = {TEMP_TOKEN}\nexpiration = {iso(now + datetime.timedelta(hours=2))}\n\n"
        f"[expired]\naws_access_key_id = {OLD_AKID}\naws_secret_access_key = {OLD_SECRET}\n"
        f"aws_session_token = {OLD_TOKEN}\nexpiration = {iso(now - datetime.timedelta(minutes=1))}\n")
    s = start_kinesisd(str(d / "data"), extra=["--credentials", str(creds), "--region", REGION, "--log-level", "debug",
                                               "--create-stream", "auth-test:1"])
    yield s
    assert s.stop() == 0
    with open(s.log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in log, "a secret reached kinesisd's log"


def client(server, akid=TEST_AKID, secret=TEST_SECRET, token=None, region=REGION, **config):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                                 **config)
    return boto3.client("kinesis", endpoint_url=server.endpoint, region_name=region, aws_access_key_id=akid,
                        aws_secret_access_key=secret, aws_session_token=token, config=cfg)


def refused(call):
    with pytest.raises(ClientError) as e:
        call()
    err = e.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err["Error"]["Code"], err["Error"]["Message"]


# ---- accepted ----

def test_known_key_is_accepted(server):
    assert "auth-test" in client(server).list_streams()["StreamNames"]


def test_temporary_key_with_its_token_is_accepted(server):
    c = client(server, TEMP_AKID, TEMP_SECRET, TEMP_TOKEN)
    assert c.put_record(StreamName="auth-test", Data=b"t", PartitionKey="k")["ShardId"] == "shardId-000000000000"


# ---- refused, in AWS's words ----

def test_unknown_access_key(server):
    c = client(server, "AKIDNOBODYKNOWS00000", TEST_SECRET)
    assert refused(c.list_streams) == ("UnrecognizedClientException", MSG_UNRECOGNIZED)


def test_wrong_secret(server):
    c = client(server, TEST_AKID, "not-the-right-secret")
    assert refused(c.list_streams) == ("InvalidSignatureException", MSG_SIGNATURE)


def test_wrong_session_token(server):
    c = client(server, TEMP_AKID, TEMP_SECRET, TEMP_TOKEN[:-4] + "AAA=")
    assert refused(c.list_streams) == ("UnrecognizedClientException", MSG_UNRECOGNIZED)


def test_missing_session_token(server):
    c = client(server, TEMP_AKID, TEMP_SECRET)
    assert refused(c.list_streams) == ("UnrecognizedClientException", MSG_UNRECOGNIZED)


def test_expired_session_token(server):
    c = client(server, OLD_AKID, OLD_SECRET, OLD_TOKEN)
    assert refused(c.list_streams) == ("ExpiredTokenException",
                                       "The security token included in the request is expired")


def test_wrong_region(server):
    c = client(server, TEST_AKID, TEST_SECRET, region="eu-west-1")
    assert refused(c.list_streams) == ("InvalidSignatureException",
                                       "Credential should be scoped to a valid region, not 'eu-west-1'.")


def shifted_clock(monkeypatch, seconds):
    """Makes botocore sign as if the time were `seconds` away from now (SigV4 reads get_current_datetime)."""
    real = botocore.auth.get_current_datetime
    signed = real() + datetime.timedelta(seconds=seconds)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed)
    return signed.strftime("%Y%m%dT%H%M%SZ")


def server_now_between(before, after, text):
    """The server's "now" quoted in text lies between two of our clock readings (second precision)."""
    t = datetime.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    return int(before) - 1 <= t <= after + 1


def test_signature_expired(server, monkeypatch):
    stale = shifted_clock(monkeypatch, -10 * 60)
    before = time.time()
    code, message = refused(client(server).list_streams)
    after = time.time()
    assert code == "InvalidSignatureException"
    m = re.fullmatch(r"Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) "
                     r"\((\d{8}T\d{6}Z) - 5 min\.\)", message)
    assert m, message
    assert m.group(1) == stale
    assert server_now_between(before, after, m.group(3))
    now = datetime.datetime.strptime(m.group(3), "%Y%m%dT%H%M%SZ")
    assert m.group(2) == (now - datetime.timedelta(minutes=5)).strftime("%Y%m%dT%H%M%SZ")


def test_signature_not_yet_current(server, monkeypatch):
    future = shifted_clock(monkeypatch, 10 * 60)
    before = time.time()
    code, message = refused(client(server).list_streams)
    after = time.time()
    assert code == "InvalidSignatureException"
    m = re.fullmatch(r"Signature not yet current: (\d{8}T\d{6}Z) is still later than (\d{8}T\d{6}Z) "
                     r"\((\d{8}T\d{6}Z) \+ 5 min\.\)", message)
    assert m, message
    assert m.group(1) == future
    assert server_now_between(before, after, m.group(3))


def test_missing_authentication_token(server):
    c = client(server, signature_version=botocore.UNSIGNED)
    assert refused(c.list_streams) == ("MissingAuthenticationTokenException", "Missing Authentication Token")


# ---- hand-made requests: malformed headers and wrong scopes ----

def raw_post(server, headers, body=b"{}"):
    """POSTs with exactly the given headers over a fresh connection; returns (status, parsed JSON body)."""
    host, port = "127.0.0.1", server.port
    lines = [f"POST / HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def signed_headers(server, service="kinesis", region=REGION, akid=TEST_AKID, secret=TEST_SECRET,
                   target="Kinesis_20131202.ListStreams", body=b"{}"):
    """Headers of a ListStreams request signed by botocore's SigV4Auth for the given service and region."""
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(akid, secret), service, region).add_auth(req)
    headers = dict(req.headers.items())
    headers.pop("Host", None)
    return headers


def test_credential_scoped_to_another_service(server):
    status, body = raw_post(server, signed_headers(server, service="dynamodb"))
    assert status == 400
    assert body == {"__type": "InvalidSignatureException",
                    "message": "Credential should be scoped to correct service: 'kinesis'."}


def test_body_changed_after_signing(server):
    headers = signed_headers(server, body=b'{"Limit": 1}')
    status, body = raw_post(server, headers, b'{"Limit": 2}')
    assert status == 400
    assert body == {"__type": "InvalidSignatureException", "message": MSG_SIGNATURE}


def test_signed_header_changed_after_signing(server):
    headers = signed_headers(server)
    headers["X-Amz-Target"] = "Kinesis_20131202.DescribeStreamSummary"
    status, body = raw_post(server, headers, b'{"StreamName": "auth-test"}')
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"


def test_malformed_authorization(server):
    status, body = raw_post(server, {"Content-Type": "application/x-amz-json-1.1",
                                     "X-Amz-Target": "Kinesis_20131202.ListStreams", "Authorization": "X"})
    assert status == 400
    assert body == {"__type": "IncompleteSignatureException", "message":
                    "Authorization header requires 'Credential' parameter. "
                    "Authorization header requires 'Signature' parameter. "
                    "Authorization header requires 'SignedHeaders' parameter. "
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                    "Authorization=X"}


def test_missing_date(server):
    headers = signed_headers(server)
    del headers["X-Amz-Date"]
    status, body = raw_post(server, headers)
    assert status == 400
    assert body == {"__type": "IncompleteSignatureException", "message":
                    "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                    "Authorization=" + headers["Authorization"]}


def test_host_not_signed(server):
    headers = signed_headers(server)
    headers["Authorization"] = re.sub(r"SignedHeaders=[^,]*", "SignedHeaders=content-type;x-amz-date;x-amz-target",
                                      headers["Authorization"])
    status, body = raw_post(server, headers)
    assert status == 400
    assert body == {"__type": "InvalidSignatureException",
                    "message": "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."}


# ---- other clients ----

@pytest.mark.parametrize("aws", ["aws", "/usr/bin/aws"], ids=["cli-v1", "cli-v2"])
def test_aws_cli_prints_the_message(server, aws):
    env = cli_env(server.endpoint, AWS_ACCESS_KEY_ID="AKIDNOBODYKNOWS00000", AWS_DEFAULT_REGION=REGION)
    p = subprocess.run([aws, "kinesis", "list-streams", "--endpoint-url", server.endpoint], env=env,
                       capture_output=True, timeout=120)
    assert p.returncode != 0
    assert ("An error occurred (UnrecognizedClientException) when calling the ListStreams operation: "
            "The security token included in the request is invalid.") in p.stderr.decode()


def test_curl_sigv4_over_h2c(server):
    """curl signs for itself (--aws-sigv4) and speaks HTTP/2 with prior knowledge: the same checks apply."""
    def curl(user):
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "--aws-sigv4", f"aws:amz:{REGION}:kinesis",
                            "--user", user, "-H", "Content-Type: application/x-amz-json-1.1",
                            "-H", "X-Amz-Target: Kinesis_20131202.ListStreams", "-d", "{}",
                            "-w", "\n%{http_version} %{http_code}", server.endpoint + "/"],
                           capture_output=True, timeout=30)
        body, _, status = p.stdout.decode().rpartition("\n")
        return status, json.loads(body)
    status, body = curl(f"{TEST_AKID}:{TEST_SECRET}")
    assert status == "2 200"
    assert "auth-test" in body["StreamNames"]
    status, body = curl(f"{TEST_AKID}:wrong-secret")
    assert status == "2 400"
    assert body == {"__type": "InvalidSignatureException", "message": MSG_SIGNATURE}


def js_roundtrip(server, handler, secret):
    """The unmodified JS SDK v3 (tests/integration/js/roundtrip.js) with the given secret for TEST_AKID."""
    script = os.path.join(ROOT, "tests", "integration", "js", "roundtrip.js")
    plan = {"shards": 1, "records": [{"data": "aGk=", "pk": "js", "ehk": None},  # one PutRecord,
                                     {"data": "aG8=", "pk": "js2", "ehk": None}]}  # one PutRecords
    env = cli_env(AWS_SECRET_ACCESS_KEY=secret, NODE_NO_WARNINGS="1", KN_NODE_MODULES=NODE_MODULES)
    out = subprocess.run(["node", script, server.endpoint, unique_name("js-auth"), handler],
                         input=json.dumps(plan).encode(), env=env, capture_output=True, timeout=90)
    assert out.stdout.strip(), out.stderr.decode(errors="replace")
    return json.loads(out.stdout)


@pytest.mark.parametrize("handler", ["default", "h1"], ids=["js-h2c", "js-http1.1"])
def test_js_sdk_signatures_are_verified(server, handler):
    """Over HTTP/2 the JS SDK signs ':authority' where other clients sign host: both verify, and a wrong secret
    fails on both."""
    report = js_roundtrip(server, handler, TEST_SECRET)
    assert "fatal" not in report, report
    assert report["sdkStage"] == "done"
    report = js_roundtrip(server, handler, "not-the-right-secret")
    assert report["fatal"]["name"] == "InvalidSignatureException", report
    assert report["fatal"]["message"] == MSG_SIGNATURE
    assert report["fatal"]["status"] == 400
