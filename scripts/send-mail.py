#!/usr/bin/env python3
"""Sends one message over SMTP and prints each reply of the server, as a sending MTA would see it.

    scripts/send-mail.py FROM TO [TO ...] [--server HOST:PORT] [--subject TEXT]

The default server is the demo Postfix of scripts/run.sh (127.0.0.1:$GATEWAY_SMTP_PORT, 2525). Exit status 0 when
every recipient was accepted and the message queued, 1 when the server refused something, 2 on connection errors.
"""
import argparse
import os
import smtplib
import sys
import uuid
from email.message import EmailMessage
from email.utils import formatdate


def main() -> int:
    parser = argparse.ArgumentParser(description="Send one message and print the SMTP replies.")
    parser.add_argument("sender")
    parser.add_argument("recipients", nargs="+")
    parser.add_argument("--server", default="127.0.0.1:" + os.environ.get("GATEWAY_SMTP_PORT", "2525"))
    parser.add_argument("--subject", default="Hello through the gateway")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")

    message = EmailMessage()
    message["From"] = args.sender
    message["To"] = ", ".join(args.recipients)
    message["Subject"] = args.subject
    message["Date"] = formatdate()
    message["Message-ID"] = f"<{uuid.uuid4().hex}@newcomer.localhost>"
    message.set_content("Sent by scripts/send-mail.py.\n")

    try:
        smtp = smtplib.SMTP(host, int(port), local_hostname="newcomer.localhost", timeout=30)
    except OSError as e:
        print(f"cannot connect to {args.server}: {e}", file=sys.stderr)
        return 2
    ok = True
    try:
        code, text = smtp.ehlo()
        code, text = smtp.mail(args.sender)
        print(f"MAIL FROM:<{args.sender}>  ->  {code} {text.decode()}")
        ok = code < 300
        accepted = []
        for rcpt in args.recipients:
            code, text = smtp.rcpt(rcpt)
            print(f"RCPT TO:<{rcpt}>  ->  {code} {text.decode()}")
            if code < 300:
                accepted.append(rcpt)
            else:
                ok = False
        if accepted:
            code, text = smtp.data(message.as_bytes())
            print(f"DATA  ->  {code} {text.decode()}")
            ok = ok and code < 300
        smtp.quit()
    except smtplib.SMTPException as e:
        print(f"SMTP error: {e}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
