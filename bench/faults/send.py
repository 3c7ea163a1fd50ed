#!/usr/bin/env python3
"""Sender of bench/faults/run.sh: N messages, each with a unique token, over several SMTP sessions to Postfix.

Usage: send.py N RUN_ID RESULTS_FILE PROGRESS_FILE port1,port2,... [SESSIONS]

Message i (token "<run>-<i>") goes to:
  i % 40 == 0   user@unmanaged.test from sender@remote.test           must be refused (no managed domain)
  i % 40 == 1   someone@external.test from sender@out.test            must be refused (outbound client not a source)
  i % 20 == 2   user@flap.test (one host that goes away for a while)  must arrive
  otherwise     user@main.test (two hosts of equal preference)        must arrive
A 4xx answer is retried (as a client MTA would) until accepted or refused; a 5xx is final. One line per
message is written to RESULTS_FILE: "<token> <kind> <accepted|refused|failed> <last reply>".
"""
import os
import smtplib
import sys
import threading
import time

n, run, results_path, progress_path, ports = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")
sessions = int(sys.argv[6]) if len(sys.argv) > 6 else 8
lock = threading.Lock()
done = 0
out = open(results_path, "w")


def envelope(i):
    if i % 40 == 0:
        return "refuse-unmanaged", "sender@remote.test", "user@unmanaged.test"
    if i % 40 == 1:
        return "refuse-outbound", "sender@out.test", "someone@external.test"
    if i % 20 == 2:
        return "flap", "sender@remote.test", "user@flap.test"
    return "main", "sender@remote.test", "user@main.test"


def body(token, sender, rcpt):
    return (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: token {token}\r\nMessage-ID: <{token}@faults.bench>\r\n\r\n"
            f"token {token}\r\n" + ("x" * 70 + "\r\n") * 40)


def connect(port):
    while True:
        try:
            s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
            s.ehlo("sender.faults.bench")
            return s
        except (OSError, smtplib.SMTPException):
            time.sleep(0.5)


def worker(k):
    global done
    port = ports[k % len(ports)]
    s = connect(port)
    for i in range(k, n, sessions):
        token = f"{run}-{i}"
        kind, sender, rcpt = envelope(i)
        status, reply = "failed", ""
        for _ in range(600):
            try:
                s.sendmail(sender, [rcpt], body(token, sender, rcpt))
                status, reply = "accepted", "250"
                break
            except smtplib.SMTPRecipientsRefused as e:
                code, msg = list(e.recipients.values())[0]
                reply = f"{code} {msg.decode(errors='replace')}"
                if 500 <= code < 600:
                    status = "refused"
                    break
                s.rset()
            except smtplib.SMTPResponseException as e:
                reply = f"{e.smtp_code} {e.smtp_error.decode(errors='replace') if isinstance(e.smtp_error, bytes) else e.smtp_error}"
                if 500 <= e.smtp_code < 600:
                    status = "refused"
                    break
                try:
                    s.rset()
                except (OSError, smtplib.SMTPException):
                    s = connect(port)
            except (OSError, smtplib.SMTPException) as e:
                # Connection lost: whether Postfix took the message is unknown only if it died after the data;
                # Postfix is not a fault target here, so this is a reconnect and a retry.
                reply = f"connection: {e}"
                s = connect(port)
            time.sleep(1)
        with lock:
            out.write(f"{token} {kind} {status} {reply.replace(chr(10), ' ')}\n")
            done += 1
            if done % 100 == 0:
                with open(progress_path + ".tmp", "w") as p:
                    p.write(str(done))
                os.replace(progress_path + ".tmp", progress_path)
    try:
        s.quit()
    except (OSError, smtplib.SMTPException):
        pass


threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
out.close()
with open(progress_path, "w") as p:
    p.write(str(n))
