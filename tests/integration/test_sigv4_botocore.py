"""kn_sigv4 against botocore's own signer: many randomized Kinesis-like requests are signed by botocore's SigV4Auth and
by kn_sign (tests/tools/sign.c, which calls kn_sigv4_sign), and the Authorization headers must be identical.

The requests vary everything a signer looks at: operation, body (JSON with binary data, non-ASCII text, raw bytes,
empty), extra headers (mixed case, repeated names, runs of spaces and tabs, hop-by-hop headers botocore leaves
unsigned, a correct X-Amz-Content-SHA256), session tokens, regions, services, times, endpoints, paths (dot segments,
doubled slashes, percent signs, non-ASCII) and query strings. KN_SIGV4_SEED picks the seed (default fixed) and
KN_SIGV4_COUNT the number of requests.
"""
import base64
import datetime
import hashlib
import json
import os
import random
import string
import subprocess
from unittest import mock
from urllib.parse import quote, urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import BUILD

KN_SIGN = os.path.join(BUILD, "tests", "kn_sign")
SEED = int(os.environ.get("KN_SIGV4_SEED", "20150830"))
COUNT = int(os.environ.get("KN_SIGV4_COUNT", "600"))

TARGETS = ["PutRecord", "PutRecords", "GetRecords", "GetShardIterator", "CreateStream", "DescribeStream",
           "DescribeStreamSummary", "ListShards", "ListStreams", "DeleteStream", "MergeShards", "SplitShard",
           "IncreaseStreamRetentionPeriod", "AddTagsToStream", "RegisterStreamConsumer"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "sa-east-1", "cn-north-1",
           "us-gov-west-1", "il-central-1"]
UNSIGNED = ["User-Agent", "Expect", "Connection", "Keep-Alive", "TE", "Upgrade", "X-Amzn-Trace-Id",
            "Transfer-Encoding", "Proxy-Authorization", "Trailer"]
PRINTABLE = string.ascii_letters + string.digits + " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def random_text(rng, n, alphabet=string.ascii_letters + string.digits):
    return "".join(rng.choice(alphabet) for _ in range(n))


def random_unicode(rng, n):
    pool = "aé€ሴ😀中文Ωß\u00a0\u2028\"\\/\n\t" + string.ascii_letters
    return "".join(rng.choice(pool) for _ in range(n))


def random_body(rng, target):
    kind = rng.random()
    if kind < 0.08:
        return b""
    if kind < 0.16:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
    stream = random_text(rng, rng.randint(1, 40), string.ascii_letters + string.digits + "_.-")
    if target == "PutRecords":
        doc = {"StreamName": stream, "Records": [
            {"Data": base64.b64encode(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))).decode(),
             "PartitionKey": random_unicode(rng, rng.randint(1, 20))} for _ in range(rng.randint(1, 8))]}
    elif target == "PutRecord":
        doc = {"StreamName": stream, "PartitionKey": random_unicode(rng, rng.randint(1, 30)),
               "Data": base64.b64encode(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 500)))).decode()}
        if rng.random() < 0.3:
            doc["ExplicitHashKey"] = str(rng.getrandbits(128))
    else:
        doc = {"StreamName": stream, "Tag": random_unicode(rng, rng.randint(0, 30))}
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8")


def random_path(rng):
    if rng.random() < 0.7:
        return "/"
    pieces = ["", ".", "..", "a", "stream", "x.y", "%41", "sp ace", "ሴ", "~tilde", "$d", "a+b", "k=v"]
    path = "/" + "/".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
    return path + ("/" if rng.random() < 0.3 else "")


def random_query(rng):
    if rng.random() < 0.75:
        return ""
    pairs = []
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(["Action", "Version", "p", "ሴ", "a b", "x-y", random_text(rng, 3)])
        value = rng.choice(["", "1", "v a/l", "ü", random_text(rng, 5, PRINTABLE)])
        pairs.append(f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}")
    return "&".join(pairs)


def random_header_value(rng):
    value = "".join(rng.choice(PRINTABLE + "  \t") for _ in range(rng.randint(0, 30)))
    return rng.choice(["", " ", "  \t "]) + value + rng.choice(["", " ", "\t"])


def case_variant(rng, name):
    return rng.choice([name, name.lower(), name.upper()])


def random_case(rng):
    target = rng.choice(TARGETS)
    region = rng.choice(REGIONS)
    service = "kinesis" if rng.random() < 0.85 else rng.choice(["service", "firehose", "s3x"])
    if rng.random() < 0.5:
        host = f"kinesis.{region}.amazonaws.com"
        url = f"https://{host}"
    else:
        host = f"127.0.0.1:{rng.randint(1024, 65535)}"
        url = f"http://{host}"
    query = random_query(rng)
    url += random_path(rng) + (f"?{query}" if query else "")
    body = random_body(rng, target)
    headers = [(case_variant(rng, "Host"), host),
               ("X-Amz-Target", f"Kinesis_20131202.{target}"),
               ("Content-Type", "application/x-amz-json-1.1")]
    for _ in range(rng.randint(0, 6)):
        roll = rng.random()
        if roll < 0.35:
            name = rng.choice(UNSIGNED)
        elif roll < 0.45:
            name = "X-Amz-Content-SHA256"
        else:
            name = f"X-Custom-{rng.randint(1, 4)}"
        value = hashlib.sha256(body).hexdigest() if name == "X-Amz-Content-SHA256" else random_header_value(rng)
        headers.append((case_variant(rng, name), value))
    akid = "AKIA" + random_text(rng, 16, string.ascii_uppercase + string.digits)
    secret = random_text(rng, 40, string.ascii_letters + string.digits + "+/")
    token = None
    if rng.random() < 0.3:
        token = random_text(rng, rng.randint(100, 400), string.ascii_letters + string.digits + "+/") + "=="
    when = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        seconds=rng.randint(0, 100 * 365 * 86400))
    method = "POST" if rng.random() < 0.9 else rng.choice(["GET", "PUT", "DELETE"])
    return dict(method=method, url=url, headers=headers, body=body, akid=akid, secret=secret, token=token,
                region=region, service=service, when=when)


def sign_with_botocore(case):
    """Returns (the request as botocore sent it, its Authorization header)."""
    request = AWSRequest(method=case["method"], url=case["url"], data=case["body"])
    for name, value in case["headers"]:
        # HTTPHeaders keeps every value of a repeated name, in order, as a wire request would.
        request.headers[name] = value
    signer = botocore.auth.SigV4Auth(Credentials(case["akid"], case["secret"], case["token"]), case["service"],
                                     case["region"])
    with mock.patch("botocore.auth.get_current_datetime", return_value=case["when"]):
        signer.add_auth(request)
    sent_headers = [[k, v] for k, v in request.headers.items() if k.lower() != "authorization"]
    parts = urlsplit(case["url"])
    description = {"method": case["method"], "path": parts.path, "query": parts.query, "headers": sent_headers,
                   "body_b64": base64.b64encode(case["body"]).decode(), "akid": case["akid"],
                   "secret": case["secret"], "region": case["region"], "service": case["service"],
                   "amz_date": request.context["timestamp"]}
    return description, request.headers["Authorization"]


def run_kn_sign(descriptions):
    assert os.path.exists(KN_SIGN), f"{KN_SIGN} is missing: build the project first"
    stdin = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in descriptions)
    out = subprocess.run([KN_SIGN], input=stdin.encode("utf-8"), capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode().splitlines()


def test_kn_sign_matches_botocore_on_randomized_requests():
    rng = random.Random(SEED)
    cases = [random_case(rng) for _ in range(COUNT)]
    signed = [sign_with_botocore(c) for c in cases]
    ours = run_kn_sign([d for d, _ in signed])
    assert len(ours) == len(signed)
    mismatches = [(d, want, got) for (d, want), got in zip(signed, ours) if want != got]
    for d, want, got in mismatches[:5]:
        print(f"request: {json.dumps(d, ensure_ascii=False)[:2000]}\nbotocore: {want}\nkn_sign:  {got}\n")
    assert not mismatches, f"{len(mismatches)} of {len(signed)} Authorization headers differ (seed {SEED})"
    # The generator must actually have exercised what the signer is sensitive to.
    assert sum(c["token"] is not None for c in cases) > COUNT // 10
    assert sum(any(n.lower() in ("user-agent", "expect", "connection") for n, _ in c["headers"]) for c in cases) > 10
    assert sum(len({n.lower() for n, _ in c["headers"]}) < len(c["headers"]) for c in cases) > 10
    assert sum(urlsplit(c["url"]).path != "/" for c in cases) > COUNT // 10
    assert sum(urlsplit(c["url"]).query != "" for c in cases) > COUNT // 10
    assert sum(any(b > 127 for b in c["body"]) for c in cases) > COUNT // 10


def test_kn_sign_matches_botocore_on_the_suite_request():
    """A fixed point both signers must agree on: the test suite's get-vanilla request and its published header."""
    case = dict(method="GET", url="https://example.amazonaws.com/", headers=[("Host", "example.amazonaws.com")],
                body=b"", akid="AKIDEXAMPLE", secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token=None,
                region="us-east-1", service="service",
                when=datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.timezone.utc))
    description, theirs = sign_with_botocore(case)
    want = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    assert theirs == want
    assert run_kn_sign([description]) == [want]


def test_kn_sign_rejects_a_request_without_host():
    description = {"method": "POST", "path": "/", "query": "", "headers": [["X-Amz-Date", "20150830T123600Z"]],
                   "body_b64": "", "akid": "AKIDEXAMPLE", "secret": "s", "region": "us-east-1",
                   "service": "kinesis", "amz_date": "20150830T123600Z"}
    out = subprocess.run([KN_SIGN], input=(json.dumps(description) + "\n").encode(), capture_output=True, timeout=30)
    assert out.returncode == 1
    assert b"line 1" in out.stderr
