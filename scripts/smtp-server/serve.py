#!/usr/bin/env python3
"""A real SMTP server for the e-mail tests: aiosmtpd (from PyPI, unmodified) on 127.0.0.1, a
free port, printing "listening=<port>". Every accepted message is written to the folder given
as `<n>.json`, parsed by Python's own `email` package (an independent reader of what Lightbridge
sent):

    {"mail_from", "rcpt_tos", "tls": bool, "login": str|null,
     "headers": {name: [values…]}, "content_type", "text", "html", "raw"}

    serve.py --dir DIR [--cert PEM --key PEM] [--user U --password P] [--fail-first N [--fail-to ADDR]]

--cert/--key   offer STARTTLS with this certificate and require it before anything else.
--user/--pass  require AUTH (PLAIN or LOGIN, over TLS only) with these credentials.
--fail-first N answer the first N messages' DATA with 451 (try again later); with --fail-to,
               only the first N messages to that address. Each is written as <n>.deferred:
               {"rcpt_tos", "message_id"}.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--fail-to")
    return p.parse_args()


class Handler:
    def __init__(self, folder, fail_first, fail_to):
        self.folder = folder
        self.fail_left = fail_first
        self.fail_to = fail_to
        self.count = 0
        self.deferred = 0

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        if self.fail_left > 0 and (self.fail_to is None or self.fail_to in envelope.rcpt_tos):
            self.fail_left -= 1
            self.deferred += 1
            # What was turned away, so a test can see the retry carries the same Message-ID.
            with open(os.path.join(self.folder, f"{self.deferred:04}.deferred"), "w") as f:
                json.dump({"rcpt_tos": envelope.rcpt_tos, "message_id": str(message.get("message-id", ""))}, f)
            return "451 4.3.0 Try again later"
        headers = {}
        for name, value in message.items():
            headers.setdefault(name.lower(), []).append(str(value))
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "login": getattr(session, "auth_data", None),
            "headers": headers,
            "content_type": message.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": raw.decode("utf-8", "replace"),
        }
        self.count += 1
        path = os.path.join(self.folder, f"{self.count:04}.json")
        with open(path + ".part", "w") as f:
            json.dump(record, f)
        os.replace(path + ".part", path)
        return "250 2.0.0 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password:
            return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    return check


async def main():
    args = parse_args()
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    handler = Handler(args.dir, args.fail_first, args.fail_to)
    auth = args.user is not None

    def factory():
        return SMTP(
            handler,
            hostname="localhost",
            tls_context=tls,
            require_starttls=tls is not None,
            authenticator=authenticator(args.user, args.password) if auth else None,
            auth_required=auth,
            auth_require_tls=True,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"listening={port}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
