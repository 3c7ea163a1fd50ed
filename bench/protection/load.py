#!/usr/bin/env python3
"""Load generator of bench/protection: sends real messages (SpamAssassin corpus files) to an SMTP server or to rspamd.

  load.py smtp   PORT   --list FILES.txt [--concurrency C] [--xforward]   one SMTP session per message
  load.py rspamd URL    --list FILES.txt [--concurrency C] [--settings JSON]   POST /checkv2, as the Deliverer asks it

FILES.txt names one message file per line, "<label> <path>" (label: spam or ham). A leading mbox "From " line is
dropped, line ends become CRLF. Prints one JSON object: elapsed seconds, messages per second, latency percentiles
(ms; SMTP: from the end of the data to the reply; rspamd: the whole request), reply codes per label, and for rspamd
the scores per label (for detection rates). Everything stays on 127.0.0.1.
"""
import argparse
import email.utils
import http.client
import json
import re
import socket
import threading
import time
import urllib.parse


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"From "):
        data = data[data.find(b"\n") + 1:]
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    header = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    sender = "sender@corpus.test"
    m = re.search(r"^Return-Path:\s*<([^>\s]+@[^>\s]+)>", header, re.M | re.I)
    if m:
        sender = m.group(1)
    else:
        m = re.search(r"^From:(.*(?:\r\n[ \t].*)*)", header, re.M | re.I)
        if m:
            addr = email.utils.parseaddr(m.group(1).replace("\r\n", ""))[1]
            if "@" in addr and " " not in addr:
                sender = addr
    return data, sender


class Session:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("latin-1"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, text):
        self.sock.sendall(text.encode("latin-1") + b"\r\n")
        return self.reply()


def smtp_one(port, data, sender, xforward):
    s = Session(port)
    try:
        s.reply()
        s.cmd("EHLO corpus-client.test")
        if xforward:
            s.cmd("XFORWARD NAME=localhost ADDR=127.0.0.1 HELO=corpus-client.test")
        code, _ = s.cmd(f"MAIL FROM:<{sender}> BODY=8BITMIME")
        if code != 250:
            return code, 0.0
        code, _ = s.cmd("RCPT TO:<user@bench.test>")
        if code != 250:
            return code, 0.0
        code, _ = s.cmd("DATA")
        if code != 354:
            return code, 0.0
        body = re.sub(rb"(?m)^\.", b"..", data)
        s.sock.sendall(body + b".\r\n")
        t0 = time.perf_counter()
        code, _ = s.reply()
        latency = time.perf_counter() - t0
        try:
            s.cmd("QUIT")
        except OSError:
            pass
        return code, latency
    finally:
        s.sock.close()


class RspamdClient:
    def __init__(self, url, settings):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.settings = u.hostname, u.port, settings
        self.conn = None

    def check(self, data, sender):
        headers = {"IP": "127.0.0.1", "Helo": "corpus-client.test", "Hostname": "localhost", "From": sender,
                   "Rcpt": "user@bench.test", "Queue-Id": "bench", "Content-Type": "application/octet-stream"}
        if self.settings:
            headers["Settings"] = self.settings
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                t0 = time.perf_counter()
                self.conn.request("POST", "/checkv2", body=data, headers=headers)
                r = self.conn.getresponse()
                body = r.read()
                return r.status, time.perf_counter() - t0, json.loads(body)
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))] * 1000, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["smtp", "rspamd"])
    ap.add_argument("target")
    ap.add_argument("--list", required=True)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--xforward", action="store_true")
    ap.add_argument("--settings", default="")
    a = ap.parse_args()

    items = []
    with open(a.list) as f:
        for line in f:
            label, path = line.rstrip("\n").split(" ", 1)
            items.append((label, *load(path)))

    lock = threading.Lock()
    nxt = [0]
    latencies, codes, scores, errors = [], {}, {}, []

    def worker():
        client = RspamdClient(a.target, a.settings) if a.mode == "rspamd" else None
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(items):
                return
            label, data, sender = items[i]
            try:
                if a.mode == "smtp":
                    code, latency = smtp_one(int(a.target), data, sender, a.xforward)
                    score = None
                else:
                    code, latency, result = client.check(data, sender)
                    score = result.get("score")
            except Exception as e:  # recorded, the run goes on
                with lock:
                    errors.append(f"{label}: {e}")
                continue
            with lock:
                latencies.append(latency)
                key = f"{label}:{code}"
                codes[key] = codes.get(key, 0) + 1
                if score is not None:
                    scores.setdefault(label, []).append(score)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    print(json.dumps({
        "messages": len(items), "elapsed": round(elapsed, 3), "per_second": round(len(items) / elapsed, 1),
        "p50_ms": percentile(latencies, 0.50), "p90_ms": percentile(latencies, 0.90), "p99_ms": percentile(latencies, 0.99),
        "codes": codes, "scores": scores, "errors": errors[:20], "error_count": len(errors),
    }))


if __name__ == "__main__":
    main()
