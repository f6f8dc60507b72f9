"""boto3's PutRecord in a loop on one client for a fixed time: the Python side of the "library vs boto3" client
workload, doing the same calls as bench_put_loop (100-byte records, one partition key per call, boto3's default
"standard" retry mode).

    python3 bench/boto3_loop.py --endpoint http://H:P --stream NAME [--seconds S] [--record-size B]

Credentials and region from the environment, as for any boto3 program. Prints
BENCH_RESULT {"calls": N, "seconds": S, "failed": F, "retried": R, "first_error": "..."}; exit 1 when a call failed.
"""
import argparse
import json
import sys
import time

import boto3
import botocore.config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--stream", required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--record-size", type=int, default=100)
    a = ap.parse_args()
    client = boto3.client("kinesis", endpoint_url=a.endpoint,
                          config=botocore.config.Config(retries={"mode": "standard"}))
    data = bytes((i * 131 + 7) & 0xFF for i in range(a.record_size))
    calls = failed = retried = 0
    first_error = ""
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < a.seconds:
        try:
            r = client.put_record(StreamName=a.stream, Data=data, PartitionKey=f"loop-{calls + failed}")
            calls += 1
            retried += r["ResponseMetadata"].get("RetryAttempts", 0) > 0
        except Exception as e:  # any failure makes the run invalid; keep the first for the report
            failed += 1
            first_error = first_error or f"{type(e).__name__}: {e}"
    print("BENCH_RESULT " + json.dumps({"calls": calls, "seconds": elapsed, "failed": failed, "retried": retried,
                                         "first_error": first_error}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
