#!/usr/bin/env python3
"""A DNS server for bench/protection that answers every query with SERVFAIL, on 127.0.0.1 only: the benchmark must not
query the internet, and a quick "temporary failure" neither waits for timeouts nor makes rspamd score names as
non-existent (NXDOMAIN would). Usage: dns_stub.py PORT"""
import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, peer = sock.recvfrom(4096)
    if len(data) < 12:
        continue
    flags = (data[2] << 8) | data[3]
    end = 12
    while end < len(data) and data[end] != 0:
        end += data[end] + 1
    end += 5  # the root label, QTYPE and QCLASS
    # QR=1, opcode and RD copied, RA=1, RCODE=2 (SERVFAIL); the one question is echoed, nothing else.
    reply = (0x8000 | (flags & 0x7900) | 0x0080 | 2).to_bytes(2, "big")
    sock.sendto(data[:2] + reply + b"\0\1\0\0\0\0\0\0" + data[12:end], peer)
