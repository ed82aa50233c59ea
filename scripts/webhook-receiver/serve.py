#!/usr/bin/env python3
"""A webhook receiver for the notification tests: it verifies every delivery with the official
Standard Webhooks library (`standardwebhooks` from PyPI, unmodified) and deduplicates by
`webhook-id`, as the receivers Lightbridge documents must.

    serve.py SECRET [SECRET…]     prints "listening=<port>" (HTTP on 127.0.0.1, a free port)

POST /hook            verified with each secret in turn (any may match): 200 {"verdict": "accepted"},
                      200 {"verdict": "duplicate"} for a webhook-id seen before (not processed
                      twice), or 400 {"verdict": "rejected", "error": …}. While failures are
                      queued (POST /__fail), answers 500 without looking.
POST /__fail?times=N  the next N deliveries get 500.
POST /__secrets       replaces the secrets with the JSON list in the body.
POST /__delay?ms=N    waits N ms before answering each delivery.
POST /__replay        {"headers": {...}, "body": "..."}: handled as if it had arrived, for replays.
GET  /__log           every request so far: [{"id", "verdict", "error", "type", "headers", "body"}].
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

STATE = {"secrets": sys.argv[1:], "fail": 0, "delay_ms": 0, "seen": set(), "log": []}
LOCK = threading.Lock()


def judge(headers, body):
    """The verdict on one delivery: (status, record)."""
    headers = {k.lower(): v for k, v in headers.items()}
    record = {"id": headers.get("webhook-id"), "headers": headers, "body": body}
    errors = []
    for secret in STATE["secrets"]:
        try:
            payload = Webhook(secret).verify(body, headers)
        except WebhookVerificationError as e:
            errors.append(str(e))
            continue
        record["type"] = payload.get("type")
        record["secret"] = STATE["secrets"].index(secret)
        with LOCK:
            if record["id"] in STATE["seen"]:
                record["verdict"] = "duplicate"
            else:
                STATE["seen"].add(record["id"])
                record["verdict"] = "accepted"
        return 200, record
    record["verdict"] = "rejected"
    record["error"] = "; ".join(errors) or "no secret configured"
    return 400, record


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("content-length") or 0)).decode()

    def do_GET(self):
        if self.path == "/__log":
            with LOCK:
                self.reply(200, STATE["log"])
        else:
            self.reply(404, {})

    def do_POST(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        body = self.body()
        if url.path == "/__fail":
            with LOCK:
                STATE["fail"] = int(query["times"][0])
            return self.reply(200, {})
        if url.path == "/__delay":
            STATE["delay_ms"] = int(query["ms"][0])
            return self.reply(200, {})
        if url.path == "/__secrets":
            STATE["secrets"] = json.loads(body)
            return self.reply(200, {})
        if url.path == "/__replay":
            message = json.loads(body)
            status, record = judge(message["headers"], message["body"])
            record["replayed"] = True
            with LOCK:
                STATE["log"].append(record)
            return self.reply(status, record)
        if url.path != "/hook":
            return self.reply(404, {})
        if STATE["delay_ms"]:
            time.sleep(STATE["delay_ms"] / 1000)
        with LOCK:
            failing = STATE["fail"] > 0
            if failing:
                STATE["fail"] -= 1
                STATE["log"].append({"id": self.headers.get("webhook-id"), "verdict": "failed on purpose"})
        if failing:
            return self.reply(500, {"error": "failing on purpose"})
        status, record = judge(dict(self.headers.items()), body)
        with LOCK:
            STATE["log"].append(record)
        self.reply(status, {"verdict": record["verdict"], "error": record.get("error")})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening={server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
