"""The kinesis-c benchmark suite (run it through bench/run.sh, which installs and builds first).

Starts each server on loopback on a free port, in turn: kinesalite (in-memory), kinesisd (durable, the default, data
in a temporary folder beside the build, SigV4 verified against a --credentials file), kinesisd --in-memory, and
bench_knd_noop (kinesisd's HTTP stack answering "{}" at once: the ceiling). Every server gets the same load from the
same generators: wrk replaying pre-signed requests (bench_presign + bench/pool.lua) for PutRecord and PutRecords, and
bench_drain for GetRecords. Each server runs twice, fresh each time: once for the timed put loads, once to be filled
to BENCH_RECORDS records (its memory read then) and have a shard drained. Then the client workloads against kinesisd
--in-memory: `kinesis put-record` vs `aws kinesis put-record` per invocation (hyperfine wall time, peak RSS from GNU
time), and the library's PutRecord loop vs boto3's (as run, then with server and loop pinned to one CPU). Every
answer is checked: a run with any non-200 answer, failed PutRecords entry or socket error is INVALID and is left out
of the ratios. docs/performance.md explains the method and the figures.

Prints the tables and writes them, with every raw figure, to bench/results/<UTC time>/ (results.md, results.json,
server logs, wrk output). Environment (defaults in brackets):
  BENCH_DURATION [10]       seconds of each measured load run
  BENCH_WARMUP [2]          seconds of PutRecord load before the measured runs on each server
  BENCH_RECORDS [500000]    records stored in each server before its RSS is read and a shard is drained
  BENCH_FILL_MAX [240]      seconds the fill to BENCH_RECORDS may take on one server
  BENCH_WRK_THREADS [1]     wrk threads (the machine has 2 cores: one for wrk, one for the server)
  BENCH_SERVERS [kinesalite,kinesisd,kinesisd-mem,noop]
  BENCH_CLIENT [1]          0 skips the client workloads
  BENCH_CLI_RUNS [100]      hyperfine runs of `kinesis put-record` (BENCH_AWS_RUNS [15] for `aws`)
  BENCH_RSS_RUNS [10]       invocations of each tool for its peak RSS
  BENCH_LOOP_SECONDS [10]   seconds of each PutRecord loop (library, boto3)
  BENCH_DRAIN_REPEAT [3]    drains of shard 0 per server (median reported)
  BENCH_PERF [0]            1: perf record kinesisd during its 64-connection PutRecord run (perf-*.txt)
  BENCH_BUILD_DIR [build-bench], BENCH_OUT [bench/results/<time>]
"""
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.abspath(os.environ.get("BENCH_BUILD_DIR", os.path.join(ROOT, "build-bench")))
BENCH_BIN = os.path.join(BUILD, "bench")
KINESISD = os.path.join(BUILD, "server", "kinesisd")
KINESIS = os.path.join(BUILD, "cli", "kinesis")
KINESALITE = os.path.join(ROOT, ".deps", "node", "node_modules", "kinesalite", "cli.js")
POOL_LUA = os.path.join(ROOT, "bench", "pool.lua")

# A key made up for the benchmark; kinesisd is started with it in a --credentials file and verifies every signature.
AKID = "AKIDKINESISCBENCH001"
SECRET = "kinesis-c-bench-secret-0123456789abcdef"
REGION = "us-east-1"
STREAM = "bench"
SHARDS = 4
RECORD_SIZE = 100
BATCH = 500
PUT_RECORD_POOL = 4096   # distinct signed PutRecord requests (one partition key each)
PUT_RECORDS_POOL = 32    # distinct signed PutRecords requests (16,000 distinct records)
WRK_TIMEOUT = "10s"      # kinesalite takes ~1 s per 500-record batch at 16 connections; GC pauses add to it

MEM_LIMIT_MB = 8192  # kinesisd --in-memory
SERVER_LABELS = {"kinesalite": "kinesalite", "kinesisd": "kinesisd (durable)", "kinesisd-mem": "kinesisd --in-memory",
                 "noop": "no-op ceiling"}


def env_num(name, default, kind=float):
    return kind(os.environ.get(name, default))


class Config:
    def __init__(self):
        self.duration = env_num("BENCH_DURATION", 10)
        self.warmup = env_num("BENCH_WARMUP", 2)
        self.records = env_num("BENCH_RECORDS", 500000, int)
        self.fill_max = env_num("BENCH_FILL_MAX", 240)
        self.wrk_threads = env_num("BENCH_WRK_THREADS", 1, int)
        self.servers = [s for s in os.environ.get("BENCH_SERVERS", "kinesalite,kinesisd,kinesisd-mem,noop").split(",")
                        if s]
        self.client = os.environ.get("BENCH_CLIENT", "1") != "0"
        self.cli_runs = env_num("BENCH_CLI_RUNS", 100, int)
        self.aws_runs = env_num("BENCH_AWS_RUNS", 15, int)
        self.rss_runs = env_num("BENCH_RSS_RUNS", 10, int)
        self.loop_seconds = env_num("BENCH_LOOP_SECONDS", 10)
        self.drain_repeat = env_num("BENCH_DRAIN_REPEAT", 3, int)
        self.perf = os.environ.get("BENCH_PERF", "0") == "1"
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.out = os.path.abspath(os.environ.get("BENCH_OUT", os.path.join(ROOT, "bench", "results", stamp)))
        unknown = set(self.servers) - set(SERVER_LABELS)
        if unknown:
            sys.exit(f"bench: unknown server(s) in BENCH_SERVERS: {', '.join(sorted(unknown))}")
        # A pre-signed pool is valid for 5 minutes after it is signed (AWS's clock skew window).
        if max(self.duration, self.warmup, self.fill_max) > 270:
            sys.exit("bench: BENCH_DURATION, BENCH_WARMUP and BENCH_FILL_MAX must stay under 270 s (signature window)")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_env(endpoint=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    return env


class Server:
    """A server process this suite started; it is only ever signalled by its own PID."""

    def __init__(self, kind, cfg):
        self.kind, self.cfg = kind, cfg
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data_dir = None
        self.proc = None

    def command(self):
        port = str(self.port)
        if self.kind == "kinesalite":
            return ["node", KINESALITE, "--port", port, "--createStreamMs", "0", "--deleteStreamMs", "0",
                    "--updateStreamMs", "0"]
        if self.kind == "noop":
            return [os.path.join(BENCH_BIN, "bench_knd_noop"), "--host", "127.0.0.1", "--port", port]
        cmd = [KINESISD, "--host", "127.0.0.1", "--port", port, "--credentials", self.credentials_file(),
               "--log-level", "warn"]
        if self.kind == "kinesisd-mem":
            # The default 1 GiB limit fills within a PutRecords run here (~170 MB/s of frames) and then answers
            # ServiceUnavailable, which would make the run invalid; kinesalite has no limit at all.
            return cmd + ["--in-memory", "--memory-limit-mb", str(MEM_LIMIT_MB)]
        # Beside the build, so on the repository's disk (not a tmpfs /tmp).
        self.data_dir = tempfile.mkdtemp(prefix="bench-data-", dir=BUILD)
        return cmd + ["--data-dir", self.data_dir]

    def credentials_file(self):
        path = os.path.join(self.cfg.out, "credentials")
        with open(path, "w") as f:
            f.write(f"[bench]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n")
        return path

    def start(self):
        self.log = open(os.path.join(self.cfg.out, f"server-{self.kind}.log"), "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode} (see server-{self.kind}.log)")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not listen on port {self.port} within 30 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def memory_kb(self):
        """VmRSS and VmHWM of the server process, in kB."""
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1])
        return out

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def create_stream(self):
        c = boto3.client("kinesis", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=AKID,
                         aws_secret_access_key=SECRET,
                         config=botocore.config.Config(retries={"max_attempts": 1}))
        c.create_stream(StreamName=STREAM, ShardCount=SHARDS)
        deadline = time.time() + 30
        while time.time() < deadline:
            if c.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind}: stream {STREAM} not ACTIVE within 30 s")


def bench_result(text):
    return [json.loads(m) for m in re.findall(r"^BENCH_RESULT (.*)$", text, re.M)]


def run_logged(cfg, cmd, timeout, env=None, check=False):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    with open(os.path.join(cfg.out, "commands.log"), "a") as f:
        f.write(f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}(exit {p.returncode})\n\n")
    if check and p.returncode != 0:
        raise RuntimeError(f"{os.path.basename(cmd[0])} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return p


class Perf:
    """perf record of one process for the length of one run, when BENCH_PERF=1."""

    def __init__(self, cfg, server, name):
        self.proc, self.cfg, self.name = None, cfg, name
        if cfg.perf and server.kind.startswith("kinesisd") and shutil.which("perf"):
            self.data = os.path.join(cfg.out, f"perf-{name}.data")
            # Flat profile: the distribution's libraries have no frame pointers, so -g would give broken chains.
            self.proc = subprocess.Popen(["perf", "record", "-F", "999", "-p", str(server.proc.pid), "-o", self.data],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self):
        if not self.proc:
            return
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        with open(os.path.join(self.cfg.out, f"perf-{self.name}.txt"), "w") as f:
            for sort, limit in (("dso", "0.1"), ("dso,symbol", "0.5")):
                f.flush()
                subprocess.run(["perf", "report", "-i", self.data, "--stdio", "--no-children", "--percent-limit", limit,
                                "--sort", sort], stdout=f, stderr=subprocess.DEVNULL, timeout=300)


def wrk_run(cfg, server, name, op, conns, seconds, check="body", stop_records=0):
    """One wrk run replaying a freshly signed pool; returns its BENCH_RESULT with rates and validity added."""
    pool = os.path.join(cfg.out, f"pool-{server.kind}-{op}.req")
    count = PUT_RECORD_POOL if op == "put-record" else PUT_RECORDS_POOL
    run_logged(cfg, [os.path.join(BENCH_BIN, "bench_presign"), "--host", f"127.0.0.1:{server.port}", "--stream",
                     STREAM, "--op", op, "--count", str(count), "--batch", str(BATCH), "--record-size",
                     str(RECORD_SIZE), "--region", REGION, "--out", pool], 120, env=client_env(), check=True)
    batch = 1 if op == "put-record" else BATCH
    threads = max(1, min(conns, cfg.wrk_threads))
    per_thread_stop = math.ceil(stop_records / threads) if stop_records else 0
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds:g}s", "--timeout", WRK_TIMEOUT, "-s",
           POOL_LUA, server.endpoint + "/", "--", pool, str(batch), check, str(per_thread_stop)]
    perf = Perf(cfg, server, f"{server.kind}-{name}") if name == "put-record-64" else None
    cpu0 = server.cpu_seconds()
    p = run_logged(cfg, cmd, seconds + 60)
    cpu = server.cpu_seconds() - cpu0
    if perf:
        perf.finish()
    results = bench_result(p.stdout)
    if p.returncode != 0 or not results:
        raise RuntimeError(f"wrk failed on {server.kind} {name}: {p.stderr.strip()[-500:]}")
    r = results[0]
    secs = r["duration_us"] / 1e6
    sock_errors = sum(v for k, v in r["errors"].items() if k != "status")
    r.update(name=name, connections=conns, seconds=secs, req_per_s=r["ok"] / secs, records_per_s=r["records"] / secs,
             server_cpu_us_per_req=(cpu * 1e6 / r["ok"]) if r["ok"] else None,
             valid=r["bad"] == 0 and r["failed_entries"] == 0 and sock_errors == 0 and r["ok"] > 0)
    why = "" if r["valid"] else (f" INVALID: {r['bad']} non-200, {r['failed_entries']} failed entries, "
                                  f"{sock_errors} socket errors; first: {r['first_bad'][:200]}")
    log(f"  {name:<16} {r['req_per_s']:>10.0f} req/s {r['records_per_s']:>10.0f} records/s "
        f"p50 {r['latency_us']['p50'] / 1000:.2f} ms p99 {r['latency_us']['p99'] / 1000:.2f} ms{why}")
    return r


def drain_run(cfg, server):
    p = run_logged(cfg, [os.path.join(BENCH_BIN, "bench_drain"), "--endpoint", server.endpoint, "--stream", STREAM,
                         "--repeat", str(cfg.drain_repeat), "--max-seconds", "60", "--region", REGION], 400,
                   env=client_env())
    runs = bench_result(p.stdout)
    if not runs:
        raise RuntimeError(f"bench_drain failed on {server.kind}: {p.stderr.strip()[-500:]}")
    rates = [r["records"] / r["seconds"] for r in runs if r["seconds"] > 0]
    out = {"runs": runs, "valid": all(r["bad"] == 0 and r["complete"] for r in runs) and bool(rates),
           "records": runs[0]["records"], "records_per_s": statistics.median(rates) if rates else 0}
    log(f"  {'get-records':<16} {out['records_per_s']:>10.0f} records/s over {out['records']} records"
        + ("" if out["valid"] else f" INVALID: {runs[-1]['first_bad'][:200]}"))
    return out


def throughput_phase(cfg, server, res):
    """The measured put loads on a fresh server, then its memory after them (whatever they stored)."""
    plan = [("warmup", "put-record", 64, cfg.warmup), ("put-record-1", "put-record", 1, cfg.duration),
            ("put-record-64", "put-record", 64, cfg.duration), ("put-records-16", "put-records", 16, cfg.duration)]
    check = "status" if server.kind == "noop" else "body"
    stored = 0
    for name, op, conns, secs in plan:
        if secs > 0:
            res["runs"][name] = wrk_run(cfg, server, name, op, conns, secs, check)
            stored += res["runs"][name]["records"]
    if server.kind != "noop":
        res["memory_after_puts"] = dict(server.memory_kb(), records=stored,
                                        valid=all(r["valid"] for r in res["runs"].values()))


def storage_phase(cfg, server, res):
    """On a second fresh server: fill to cfg.records with PutRecords, read the memory, drain shard 0.

    wrk stops a thread as soon as its target is reached, abandoning up to 15 requests in flight on the other
    connections; the server may still store those, so it may hold up to 7,500 records more than acknowledged."""
    fill = wrk_run(cfg, server, "fill", "put-records", 16, cfg.fill_max, "body", cfg.records)
    res["runs"]["fill"] = fill
    time.sleep(1)
    res["memory"] = dict(server.memory_kb(), records=fill["records"], valid=fill["valid"])
    log(f"  memory after {fill['records']:,} records: VmRSS {res['memory']['VmRSS'] / 1024:.1f} MB, "
        f"VmHWM {res['memory']['VmHWM'] / 1024:.1f} MB")
    res["drain"] = drain_run(cfg, server)


def server_workloads(cfg, kind):
    """All server workloads against one kind of server, each phase on a fresh process; returns its results."""
    res = {"kind": kind, "label": SERVER_LABELS[kind], "runs": {}}
    phases = [throughput_phase] + ([storage_phase] if kind != "noop" else [])
    for phase in phases:
        server = Server(kind, cfg)
        log(f"{SERVER_LABELS[kind]}: {phase.__name__.split('_')[0]} phase on port {server.port}")
        try:
            server.start()
            if kind != "noop":
                server.create_stream()
            phase(cfg, server, res)
        except Exception as e:  # one server failing must not lose the others' figures
            res["error"] = str(e)
            log(f"  {kind}: {e}")
        finally:
            server.stop()
    return res


def hyperfine(cfg, name, cmd, runs, warmup, env):
    out = os.path.join(cfg.out, f"hyperfine-{name}.json")
    run_logged(cfg, ["hyperfine", "-N", "--warmup", str(warmup), "--runs", str(runs), "--export-json", out, cmd],
               runs * 10 + 120, env=env, check=True)
    with open(out) as f:
        r = json.load(f)["results"][0]
    return {"median_s": r["median"], "mean_s": r["mean"], "min_s": r["min"], "max_s": r["max"], "runs": len(r["times"])}


def peak_rss_kb(cmd, runs, env):
    """Median peak RSS over runs invocations, from GNU time (%M, the child's own ru_maxrss); each must exit 0.

    Not wait4 from this process: Python starts children with vfork, and Linux carries the forking process's
    high-water mark over the exec, so every child would look at least as big as this Python."""
    peaks = []
    for _ in range(runs):
        p = subprocess.run(["/usr/bin/time", "-f", "BENCH_MAXRSS_KB %M"] + cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        m = re.search(r"^BENCH_MAXRSS_KB (\d+)$", p.stderr, re.M)
        if p.returncode != 0 or not m:
            raise RuntimeError(f"{' '.join(cmd[:2])} exited {p.returncode}: {p.stderr[-300:]}")
        peaks.append(int(m.group(1)))
    return statistics.median(peaks)


def aws_v1():
    """The pyenv aws CLI v1 itself, not pyenv's shim (which adds its own start-up to every invocation)."""
    try:
        p = subprocess.run(["pyenv", "which", "aws"], capture_output=True, text=True)
        path = p.stdout.strip() if p.returncode == 0 else None
    except FileNotFoundError:  # no pyenv: the aws on PATH
        path = None
    path = path or shutil.which("aws")
    if not path:
        raise RuntimeError("the pyenv aws CLI v1 is not installed")
    return path


def client_workloads(cfg):
    """`kinesis put-record` vs `aws kinesis put-record`, and the library's loop vs boto3's, against one kinesisd.

    It runs --in-memory: these workloads measure the clients, and at one request at a time a durable server's
    fdatasync per acknowledged record (0.15-0.25 ms here, more when the disk is busy) would weigh on both sides."""
    server = Server("kinesisd-mem", cfg)
    res = {}
    log(f"client workloads against kinesisd --in-memory on port {server.port}")
    try:
        server.start()
        server.create_stream()
        env = client_env()
        data = "x" * RECORD_SIZE
        args = ["kinesis", "put-record", "--endpoint-url", server.endpoint, "--region", REGION, "--stream-name",
                STREAM, "--partition-key", "pk-cli", "--data", data]
        ours = [KINESIS] + args[1:]
        theirs = [aws_v1()] + args
        res["aws_path"] = theirs[0]
        res["kinesis_time"] = hyperfine(cfg, "kinesis", " ".join(ours), cfg.cli_runs, 5, env)
        res["aws_time"] = hyperfine(cfg, "aws", " ".join(theirs), cfg.aws_runs, 2, env)
        res["kinesis_rss_kb"] = peak_rss_kb(ours, cfg.rss_runs, env)
        res["aws_rss_kb"] = peak_rss_kb(theirs, max(3, cfg.rss_runs // 2), env)
        log(f"  kinesis put-record {res['kinesis_time']['median_s'] * 1000:.2f} ms, "
            f"{res['kinesis_rss_kb'] / 1024:.1f} MB; aws kinesis put-record "
            f"{res['aws_time']['median_s'] * 1000:.0f} ms, {res['aws_rss_kb'] / 1024:.1f} MB")
        loops(cfg, server, res, "", None)
        # One request at a time, each side sleeps while the other works, and waking a halted vCPU of this VM on the
        # other core costs tens of microseconds per message. With the server and the loop on one CPU the wake-up is
        # a local context switch: that second measurement shows what the clients themselves cost.
        cpu = os.cpu_count() - 1
        os.sched_setaffinity(server.proc.pid, {cpu})
        loops(cfg, server, res, "_one_cpu", cpu)
    except Exception as e:
        res["error"] = str(e)
        log(f"  client workloads: {e}")
    finally:
        server.stop()
    return res


def loops(cfg, server, res, suffix, cpu):
    """The library's PutRecord loop and boto3's, one after the other; cpu (when set) pins each loop to that CPU."""
    secs = str(cfg.loop_seconds)
    env = client_env(server.endpoint)
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    cmds = {"library_loop": [os.path.join(BENCH_BIN, "bench_put_loop"), "--stream", STREAM, "--seconds", secs,
                             "--record-size", str(RECORD_SIZE)],
            "boto3_loop": [sys.executable, os.path.join(ROOT, "bench", "boto3_loop.py"), "--endpoint", server.endpoint,
                           "--stream", STREAM, "--seconds", secs, "--record-size", str(RECORD_SIZE)]}
    for name, cmd in cmds.items():
        p = run_logged(cfg, pin + cmd, cfg.loop_seconds + 60, env=env)
        found = bench_result(p.stdout)
        if not found:
            raise RuntimeError(f"{name} failed ({p.returncode}): {p.stderr.strip()[-300:]}")
        r = found[0]
        r["calls_per_s"] = r["calls"] / r["seconds"]
        r["valid"] = r["failed"] == 0 and r["calls"] > 0
        res[name + suffix] = r
    where = f" (server and loop on CPU {cpu})" if cpu is not None else ""
    log(f"  PutRecord loop{where}: library {res['library_loop' + suffix]['calls_per_s']:.0f} calls/s, "
        f"boto3 {res['boto3_loop' + suffix]['calls_per_s']:.0f} calls/s")


def micro_benchmarks(cfg):
    res = {}
    p = run_logged(cfg, [os.path.join(BENCH_BIN, "bench_sigv4")], 300)
    m_sign = re.search(r"sign\s+([\d.]+) us", p.stdout)
    m_verify = re.search(r"verify\s+([\d.]+) us", p.stdout)
    if m_sign and m_verify:
        res["sigv4_sign_us"], res["sigv4_verify_us"] = float(m_sign.group(1)), float(m_verify.group(1))
    p = run_logged(cfg, [os.path.join(BENCH_BIN, "bench_fsync"), BUILD, "--count", "30000"], 300)
    r = bench_result(p.stdout)
    if r:
        res["fdatasync"] = r[0]
    fs = res.get("fdatasync", {})
    log(f"  sigv4 sign {res.get('sigv4_sign_us')} us, verify {res.get('sigv4_verify_us')} us; fdatasync p50 "
        f"{fs.get('p50_us')} us, p99 {fs.get('p99_us')} us, max {fs.get('max_us')} us, over 20 ms: {fs.get('over_20ms')}")
    return res


def first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    with open(os.path.join(ROOT, ".deps", "node", "node_modules", "kinesalite", "package.json")) as f:
        kinesalite = json.load(f)["version"]
    fs = subprocess.run(["findmnt", "-no", "FSTYPE,SOURCE", "-T", BUILD], capture_output=True, text=True).stdout
    try:
        with open("/sys/devices/system/cpu/cpuidle/current_driver") as f:
            cpuidle = f.read().strip()
    except OSError:
        cpuidle = "unknown"
    debs = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "libcurl4", "libssl3", "libuv1",
                           "libhttp-parser2.9", "libnghttp2-14", "libcjson1"], capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "memory_gb": round(mem_kb / 1048576, 1),
        "git": first_line(["git", "-C", ROOT, "describe", "--always", "--dirty"]), "data_filesystem": fs.strip(),
        "cpuidle_driver": cpuidle, "debian_packages": debs.split("\n")[:-1],
        "loadavg_start": os.getloadavg(),
        "versions": {
            "kinesisd": first_line([KINESISD, "--version"]), "kinesis": first_line([KINESIS, "--version"]),
            "kinesalite": kinesalite, "node": first_line(["node", "--version"]), "wrk": first_line(["wrk", "-v"]),
            "hyperfine": first_line(["hyperfine", "--version"]), "aws": first_line([aws_v1(), "--version"]),
            "boto3": boto3.__version__, "cc": first_line(["cc", "--version"]),
        },
    }


# ---- report ----

def fmt_num(v, digits=0):
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_ratio(r):
    if r is None:
        return "—"
    return f"{r:.1f}×" if r >= 1 else f"{r:.3f} (1/{1 / r:.0f})" if r > 0 else "0"


def cell(servers, kind, key, pick):
    """A figure for the table: None when the server or run is missing or invalid (shown as —/INVALID)."""
    s = servers.get(kind)
    if not s:
        return None, "—"
    if key.startswith("run:"):
        r = s["runs"].get(key[4:])
        if not r:
            return None, "—" if "error" not in s else "error"
        if not r["valid"]:
            return None, "INVALID"
        return pick(r), None
    if key == "drain":
        d = s.get("drain")
        if not d:
            return None, "—" if "error" not in s else "error"
        return (d["records_per_s"], None) if d["valid"] else (None, "INVALID")
    v = s.get(key)
    if v and v.get("valid") is False:
        return None, "INVALID"
    return (pick(v), None) if v else (None, "—")


# (label, figure, how to read it, digits, whether a kinesisd/kinesalite ratio means anything)
ROWS = [
    ("PutRecord, 1 connection (req/s)", "run:put-record-1", lambda r: r["req_per_s"], 0, True),
    ("  p50 latency (ms)", "run:put-record-1", lambda r: r["latency_us"]["p50"] / 1000, 2, True),
    ("  p99 latency (ms)", "run:put-record-1", lambda r: r["latency_us"]["p99"] / 1000, 2, True),
    ("PutRecord, 64 connections (req/s)", "run:put-record-64", lambda r: r["req_per_s"], 0, True),
    ("  p50 latency (ms)", "run:put-record-64", lambda r: r["latency_us"]["p50"] / 1000, 2, True),
    ("  p99 latency (ms)", "run:put-record-64", lambda r: r["latency_us"]["p99"] / 1000, 2, True),
    ("  server CPU per request (µs)", "run:put-record-64", lambda r: r["server_cpu_us_per_req"], 1, True),
    ("PutRecords 500 × 16 connections (records/s)", "run:put-records-16", lambda r: r["records_per_s"], 0, True),
    ("Fill (fresh server): records acknowledged", "memory", lambda m: m["records"], 0, False),
    ("  VmRSS after the fill (MB)", "memory", lambda m: m["VmRSS"] / 1024, 1, True),
    ("  VmHWM after the fill (MB)", "memory", lambda m: m["VmHWM"] / 1024, 1, True),
    ("  GetRecords draining shard 0 (records/s)", "drain", None, 0, True),
    ("Records acknowledged by the measured puts", "memory_after_puts", lambda m: m["records"], 0, False),
    ("  VmRSS after them (MB)", "memory_after_puts", lambda m: m["VmRSS"] / 1024, 1, True),
]


def server_table(servers):
    kinds = [k for k in SERVER_LABELS if k in servers]
    head = ["Workload"] + [SERVER_LABELS[k] for k in kinds]
    ds = [k for k in ("kinesisd", "kinesisd-mem") if k in servers]
    if "kinesalite" in servers:
        head += [f"{SERVER_LABELS[k]} / kinesalite" for k in ds]
    if "noop" in servers:
        head += [f"{SERVER_LABELS[k]} / ceiling" for k in ds]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key, pick, digits, comparable in ROWS:
        vals = {k: cell(servers, k, key, pick) for k in kinds}
        row = [label] + [fmt_num(v, digits) if v is not None else txt for v, txt in (vals[k] for k in kinds)]
        if "kinesalite" in servers:
            row += [fmt_ratio(ratio(vals[k][0], vals["kinesalite"][0])) if comparable else "—" for k in ds]
        if "noop" in servers:
            # The no-op handler parses nothing, so only PutRecord's request rate has a meaningful ceiling.
            noop_ok = key.startswith("run:put-record-") and label.endswith("(req/s)")
            row += [f"{ratio(vals[k][0], vals['noop'][0]) * 100:.0f}%"
                    if noop_ok and ratio(vals[k][0], vals["noop"][0]) is not None else "—" for k in ds]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def client_table(c):
    if not c or "error" in c and "library_loop" not in c:
        return f"Client workloads: {c.get('error', 'not run') if c else 'not run'}"
    kt, at = c["kinesis_time"]["median_s"], c["aws_time"]["median_s"]
    lines = ["| Client workload | kinesis-c | AWS (CLI v1 / boto3) | ratio |", "|---|---|---|---|",
             f"| put-record per invocation, median wall time (ms) | {kt * 1000:.2f} | {at * 1000:.0f} | "
             f"{at / kt:.0f}× faster |",
             f"| put-record per invocation, median peak RSS (MB) | {c['kinesis_rss_kb'] / 1024:.1f} | "
             f"{c['aws_rss_kb'] / 1024:.1f} | {fmt_ratio(c['kinesis_rss_kb'] / c['aws_rss_kb'])} |"]
    for suffix, label in (("", "PutRecord loop, one connection (calls/s)"),
                          ("_one_cpu", "  same, server and loop pinned to one CPU (calls/s)")):
        lib, boto = c.get("library_loop" + suffix), c.get("boto3_loop" + suffix)
        if not lib or not boto:
            continue
        lv = lib["calls_per_s"] if lib["valid"] else None
        bv = boto["calls_per_s"] if boto["valid"] else None
        lines.append(f"| {label} | {fmt_num(lv) if lv else 'INVALID'} | {fmt_num(bv) if bv else 'INVALID'} | "
                     f"{fmt_ratio(ratio(lv, bv))} |")
    if "error" in c:
        lines.append(f"\nClient workloads stopped early: {c['error']}")
    return "\n".join(lines)


def targets(servers, client, micro):
    """Issue 4's targets: (target, measured, met)."""
    def run(kind, name, field):
        r = servers.get(kind, {}).get("runs", {}).get(name)
        return field(r) if r and r["valid"] else None

    kl64 = run("kinesalite", "put-record-64", lambda r: r["req_per_s"])
    noop64 = run("noop", "put-record-64", lambda r: r["req_per_s"])
    out = []

    def add(text, value, goal, higher=True, fmt=fmt_ratio):
        met = None if value is None else (value >= goal if higher else value <= goal)
        out.append((text, fmt(value) if value is not None else "not measured", met))

    for kind, x_lite, x_ceiling in (("kinesisd", 15, 0.5), ("kinesisd-mem", 25, 0.6)):
        lab = SERVER_LABELS[kind]
        v = run(kind, "put-record-64", lambda r: r["req_per_s"])
        add(f"{lab} PutRecord @64 ≥ {x_lite}× kinesalite", ratio(v, kl64), x_lite)
        add(f"{lab} PutRecord @64 ≥ {x_ceiling:.0%} of the no-op ceiling", ratio(v, noop64), x_ceiling,
            fmt=lambda r: f"{r:.0%}")
        add(f"{lab} PutRecord @64 p99 < 5 ms", run(kind, "put-record-64", lambda r: r["latency_us"]["p99"] / 1000), 5,
            higher=False, fmt=lambda v: f"{v:.2f} ms")
        add(f"{lab} PutRecords ≥ 50× kinesalite",
            ratio(run(kind, "put-records-16", lambda r: r["records_per_s"]),
                  run("kinesalite", "put-records-16", lambda r: r["records_per_s"])), 50)
        d, dl = servers.get(kind, {}).get("drain"), servers.get("kinesalite", {}).get("drain")
        add(f"{lab} GetRecords ≥ 20× kinesalite",
            ratio(d["records_per_s"] if d and d["valid"] else None,
                  dl["records_per_s"] if dl and dl["valid"] else None), 20)
        if kind == "kinesisd-mem":
            continue  # holds every record in RAM by design (500,000 x 100 B is 50 MB of data alone)
        m, ml = servers.get(kind, {}).get("memory"), servers.get("kinesalite", {}).get("memory")
        add(f"{lab} RSS after the fill ≤ 1/20 of kinesalite's",
            ratio(m["VmRSS"] if m and m["valid"] else None, ml["VmRSS"] if ml and ml["valid"] else None), 1 / 20,
            higher=False)
    if client and "library_loop" in client:
        add("kinesis put-record ≥ 50× faster than aws kinesis put-record",
            client["aws_time"]["median_s"] / client["kinesis_time"]["median_s"], 50)
        add("kinesis put-record peak RSS ≤ 1/10 of aws's", client["kinesis_rss_kb"] / client["aws_rss_kb"], 0.1,
            higher=False)
        lib, boto = client["library_loop"], client["boto3_loop"]
        add("library PutRecord loop ≥ 10× boto3's",
            ratio(lib["calls_per_s"] if lib["valid"] else None, boto["calls_per_s"] if boto["valid"] else None), 10)
    for k in ("sign", "verify"):
        add(f"SigV4 {k} ≤ 2.5 µs (small request, key cached)", micro.get(f"sigv4_{k}_us"), 2.5, higher=False,
            fmt=lambda v: f"{v:.2f} µs")
    return out


def targets_table(rows):
    lines = ["| Target (issue 4) | Measured | Met |", "|---|---|---|"]
    for text, value, met in rows:
        lines.append(f"| {text} | {value} | {'—' if met is None else 'yes' if met else '**NO**'} |")
    return "\n".join(lines)


def main():
    cfg = Config()
    os.makedirs(cfg.out, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    env_used = {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}
    info = machine()
    log(f"results in {cfg.out}")
    log(f"machine: {info['nproc']} cores, {info['cpu']}, kernel {info['kernel']}, load {info['loadavg_start']}")
    t0 = time.time()
    servers = {}
    for kind in cfg.servers:
        if kind.startswith("kinesisd") and not os.path.exists(KINESISD):
            log(f"{SERVER_LABELS[kind]}: skipped, {KINESISD} is not built")
            continue
        servers[kind] = server_workloads(cfg, kind)
    client = client_workloads(cfg) if cfg.client and os.path.exists(KINESISD) else None
    log("micro-benchmarks")
    micro = micro_benchmarks(cfg)
    info["loadavg_end"] = os.getloadavg()
    info["elapsed_s"] = round(time.time() - t0)
    trows = targets(servers, client, micro)
    fs = micro.get("fdatasync", {})
    report = "\n\n".join([
        f"kinesis-c benchmark, {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}: "
        f"{info['nproc']} × {info['cpu']}, Linux {info['kernel']}, load average {info['loadavg_start'][0]:.2f} at the "
        f"start and {info['loadavg_end'][0]:.2f} at the end, {info['elapsed_s']} s. Settings: "
        + (", ".join(f"{k}={v}" for k, v in sorted(env_used.items())) or "defaults") + ".",
        server_table(servers),
        client_table(client),
        f"SigV4 (bench_sigv4): sign {micro.get('sigv4_sign_us', '—')} µs, verify "
        f"{micro.get('sigv4_verify_us', '—')} µs per small request. fdatasync after a 4 KiB pwrite on the data "
        f"disk (bench_fsync, {fs.get('count', '—')} syncs): p50 {fs.get('p50_us', '—')} µs, p99 {fs.get('p99_us', '—')} µs, "
        f"worst {fs.get('max_us', 0) / 1000:.1f} ms, {fs.get('over_20ms', '—')} over 20 ms (the disk's own stalls: "
        "every commit waits them out).",
        targets_table(trows),
    ])
    with open(os.path.join(cfg.out, "results.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(cfg.out, "results.json"), "w") as f:
        json.dump({"machine": info, "settings": env_used, "servers": servers, "client": client, "micro": micro,
                   "targets": trows}, f, indent=1)
    for name in os.listdir(cfg.out):
        if name.endswith(".req"):
            os.remove(os.path.join(cfg.out, name))
    print("\n" + report)
    checked = [r for s in servers.values() for r in s["runs"].values()]
    checked += [s["drain"] for s in servers.values() if "drain" in s]
    checked += [v for k, v in (client or {}).items() if k.endswith(("_loop", "_loop_one_cpu"))]
    failed = any("error" in s for s in servers.values()) or (client is not None and "error" in client)
    return 1 if failed or any(not r["valid"] for r in checked) else 0


if __name__ == "__main__":
    sys.exit(main())
