"""A fault-injecting HTTP/1.1 proxy for the client's fault tests, on loopback.

It sits between a client (libkinesis, the `kinesis` tool) and a real Kinesis-compatible backend (moto, kinesalite,
kinesisd) and does, for each request it receives, the next action of a script the test sets (then `forward` once the
script is used up). Every request is logged (time, connection, X-Amz-Target, headers, body, action), so a test counts
attempts where they arrive instead of trusting the client's own count.

Actions (dicts; build them with the helpers below):
  forward()                      pass the request on unchanged and return the backend's answer
  reset(when)                    close the client's connection with a TCP RST:
                                   "before_read"    as soon as request bytes arrive, nothing read (never forwarded)
                                   "after_read"     after reading the whole request (never forwarded)
                                   "after_forward"  after the backend stored it, instead of its answer
  stall()                        read the request and never answer (until the client gives up); never forwarded
  delay(ms, then)                wait, then do `then` (default forward)
  error(status, type, message)   answer an AWS JSON 1.1 error ({"__type", "message"}, x-amzn-RequestId,
                                 x-amzn-ErrorType) without forwarding
  throttle(), internal_failure(), service_unavailable()   the usual three, with AWS's status codes
  truncate(forwarded)            answer with a Content-Length larger than the body, send half of it, close; the
                                 body is the backend's real answer when forwarded=True (the record landed), else a
                                 synthetic PutRecord answer (it did not)
  fail_entries(keys, code, forward_failed=False)
                                 PutRecords: entries whose PartitionKey is in `keys` get ErrorCode `code` in the answer
                                 (or keys is a dict {partition key: ErrorCode}).
                                 With forward_failed=False they are removed from the forwarded request, so the
                                 failure is true (the backend never saw them); with True they are forwarded and the
                                 failure is a lie (the backend stored them) — the case where a retry duplicates.

Only what the backend really stored is stored; the proxy never invents records. Rewriting a PutRecords body breaks
its SigV4 signature, so fail_entries needs a backend that does not check signatures (moto, kinesalite, kinesisd in
anonymous mode).

Run in-process: `with FaultProxy(backend_url) as p: p.script([...]); ...; p.requests`. Threads, not asyncio: each
client connection has its own thread; the client's connections are kept alive as it asks (so a test sees when the
client reuses one), each forwarded request goes to the backend on a new connection.
"""
import http.client
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid

HEADER_MAX = 64 * 1024
BODY_MAX = 16 * 1024 * 1024
STALL_MAX_S = 120.0


# ---- actions ----

def forward():
    return {"do": "forward"}


def reset(when="after_read"):
    assert when in ("before_read", "after_read", "after_forward"), when
    return {"do": "reset", "when": when}


def stall():
    return {"do": "stall"}


def delay(ms, then=None):
    return {"do": "delay", "ms": ms, "then": then or forward()}


def error(status, type_, message):
    """The answer's x-amzn-RequestId is the action's "request_id", so a test can tell which answer a client kept."""
    return {"do": "error", "status": status, "type": type_, "message": message, "request_id": str(uuid.uuid4())}


def throttle(stream="stream", shard="shardId-000000000000"):
    return error(400, "ProvisionedThroughputExceededException",
                 f"Rate exceeded for shard {shard} in stream {stream} under account 000000000000.")


def internal_failure():
    return error(500, "InternalFailure", "Internal Service Failure")


def service_unavailable():
    return error(503, "ServiceUnavailable", "Service Unavailable")


def truncate(forwarded=False):
    return {"do": "truncate", "forwarded": forwarded}


def fail_entries(keys, code="ProvisionedThroughputExceededException", forward_failed=False):
    """keys: partition keys to fail with `code`, or a dict {partition key: its ErrorCode}."""
    codes = dict(keys) if isinstance(keys, dict) else {k: code for k in keys}
    return {"do": "fail_entries", "codes": codes, "forward_failed": forward_failed}


def entry_error_message(code):
    if code == "ProvisionedThroughputExceededException":
        return "Rate exceeded for shard shardId-000000000000 in stream stream under account 000000000000."
    if code == "InternalFailure":
        return "Internal Service Failure"
    return f"{code} (injected by the fault proxy)"


# ---- HTTP plumbing ----

class ClientGone(Exception):
    """The client closed the connection between requests."""


def read_request(sock, buf):
    """Reads one request: (method, path, [(name, value)], body, rest-of-buffer). Raises ClientGone on a clean EOF
    before any byte of it."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > HEADER_MAX:
            raise ValueError("request head too large")
        chunk = sock.recv(65536)
        if not chunk:
            if buf:
                raise ValueError("connection closed inside a request head")
            raise ClientGone()
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    length = int(header(headers, "content-length") or 0)
    if length > BODY_MAX:
        raise ValueError("request body too large")
    while len(buf) < length:
        chunk = sock.recv(max(65536, length - len(buf)))
        if not chunk:
            raise ValueError("connection closed inside a request body")
        buf += chunk
    return method, path, headers, buf[:length], buf[length:]


def header(headers, name):
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def response_bytes(status, headers, body, content_length=None):
    reason = http.client.responses.get(status, "Unknown")
    out = [f"HTTP/1.1 {status} {reason}"]
    skip = {"content-length", "transfer-encoding", "connection"}
    out += [f"{n}: {v}" for n, v in headers if n.lower() not in skip]
    out.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


def aws_error(status, type_, message, rid):
    body = json.dumps({"__type": type_, "message": message}).encode()
    headers = [("x-amzn-RequestId", rid), ("x-amzn-ErrorType", type_),
               ("Content-Type", "application/x-amz-json-1.1")]
    return status, headers, body


def rst_close(sock):
    """Closes with a TCP RST (SO_LINGER 0) rather than an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Backend:
    """Sends requests on to the backend, each on a new connection. Not kept alive on purpose: a reused connection that
    dies mid-request leaves the proxy unsure whether the backend stored it, and resending would make the proxy itself
    a source of duplicates."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80

    def send(self, method, path, headers, body):
        hdrs = {n: v for n, v in headers if n.lower() not in ("content-length", "connection", "expect")}
        hdrs["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()


# ---- the proxy ----

class FaultProxy:
    def __init__(self, backend_url, host="127.0.0.1"):
        self.backend_url = backend_url
        self.lock = threading.Lock()
        self.actions = []
        self.requests = []      # one dict per request received, in arrival order
        self.connections = 0    # client connections accepted
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((host, 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.endpoint = f"http://{host}:{self.port}"
        self.open = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def script(self, actions):
        """Sets the actions for the next requests, in order, replacing any left over (then requests are forwarded),
        and clears the request log."""
        with self.lock:
            self.actions = list(actions)
            self.requests = []

    def requests_for(self, target):
        """The requests logged for an X-Amz-Target, including those reset before their head was read (target None:
        they were attempts too, of whatever the client was sending)."""
        with self.lock:
            return [r for r in self.requests if r["target"] in (target, None)]

    def stop(self):
        self.stopping.set()
        try:
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not on Linux
        except OSError:
            pass
        self.server.close()
        with self.lock:
            socks = list(self.open)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)

    def _next_action(self):
        with self.lock:
            return self.actions.pop(0) if self.actions else forward()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                conn_id = self.connections
                self.open.add(sock)
            threading.Thread(target=self._serve, args=(sock, conn_id), daemon=True).start()

    def _serve(self, sock, conn_id):
        backend = Backend(self.backend_url)
        buf = b""
        try:
            while not self.stopping.is_set():
                if not buf and not self._wait_readable(sock):
                    return
                action = self._next_action()
                if action["do"] == "reset" and action["when"] == "before_read":
                    self._log(conn_id, action, None, [], b"")
                    rst_close(sock)
                    return
                method, path, headers, body, buf = read_request(sock, buf)
                self._log(conn_id, action, path, headers, body)
                if not self._perform(sock, backend, action, method, path, headers, body):
                    return
        except (ClientGone, ConnectionError, ValueError, OSError):
            pass
        finally:
            with self.lock:
                self.open.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _wait_readable(self, sock):
        """Blocks until the client sends something; False when it closed the connection instead."""
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return False
        return bool(data)

    def _log(self, conn_id, action, path, headers, body):
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self.lock:
            self.requests.append({"t": time.monotonic(), "conn": conn_id, "action": action["do"], "path": path,
                                  "target": header(headers, "x-amz-target"),
                                  "headers": headers, "body": body, "json": parsed})

    def _perform(self, sock, backend, action, method, path, headers, body):
        """Does one action; returns whether the connection stays open for the next request."""
        do = action["do"]
        if do == "delay":
            time.sleep(action["ms"] / 1000.0)
            return self._perform(sock, backend, action["then"], method, path, headers, body)
        if do == "reset":
            if action["when"] == "after_forward":
                backend.send(method, path, headers, body)
            rst_close(sock)
            return False
        if do == "stall":
            self._stall(sock)
            return False
        if do == "error":
            sock.sendall(response_bytes(*aws_error(action["status"], action["type"], action["message"],
                                                   action["request_id"])))
            return True
        if do == "truncate":
            if action["forwarded"]:
                status, rh, rb = backend.send(method, path, headers, body)
            else:
                status, rh, rb = 200, [("x-amzn-RequestId", str(uuid.uuid4()))], json.dumps(
                    {"ShardId": "shardId-000000000000", "SequenceNumber": "1" * 56}).encode()
            sock.sendall(response_bytes(status, rh, rb[: len(rb) // 2], content_length=len(rb)))
            sock.close()
            return False
        if do == "fail_entries":
            status, rh, rb = self._fail_entries(backend, action, method, path, headers, body)
        else:
            status, rh, rb = backend.send(method, path, headers, body)
        sock.sendall(response_bytes(status, rh, rb))
        return True

    def _stall(self, sock):
        """Holds the request unanswered until the client closes its end (its timeout) or STALL_MAX_S passes."""
        sock.settimeout(STALL_MAX_S)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    def _fail_entries(self, backend, action, method, path, headers, body):
        req = json.loads(body)
        records = req["Records"]
        codes = action["codes"]
        failed = [r.get("PartitionKey") in codes for r in records]
        sent = records if action["forward_failed"] else [r for r, f in zip(records, failed) if not f]
        answers = iter([])
        status, rh, rb = 200, [("x-amzn-RequestId", str(uuid.uuid4()))], b""
        if sent:
            status, rh, rb = backend.send(method, path, headers, json.dumps({**req, "Records": sent}).encode())
            if status != 200:
                return status, rh, rb
            answers = iter(json.loads(rb)["Records"])
        out = []
        for record, f in zip(records, failed):
            answer = next(answers) if (not f or action["forward_failed"]) else None
            if f:
                code = codes[record["PartitionKey"]]
                answer = {"ErrorCode": code, "ErrorMessage": entry_error_message(code)}
            out.append(answer)
        result = {"FailedRecordCount": sum(1 for a in out if "ErrorCode" in a), "Records": out}
        return 200, rh, json.dumps(result).encode()


def blackhole_listener():
    """A loopback port whose connects hang (for connect timeouts): a listening socket with backlog 0 whose accept
    queue is filled by one connection nobody accepts, so the kernel drops further SYNs. Returns (port, close)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(4):  # the queue holds backlog + 1 entries; fill it whatever the kernel's rounding
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.2)

    def close():
        for s in fillers:
            s.close()
        lsock.close()

    return port, close
