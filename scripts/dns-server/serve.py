#!/usr/bin/env python3
"""A DNS server for the tests of an account proving its email domain: dnslib's (PyPI) packet
parsing, zone-file parsing and server, unmodified, answering from a zone file that is read again
at every question (a test edits the file as a domain owner edits their DNS).

    serve.py ZONE_FILE        prints "listening=<port>" (UDP on 127.0.0.1, a free port)

A name with records of other types gets an empty answer (NODATA); a name with none, NXDOMAIN.
"""
import sys
import time

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSServer


class ZoneFileResolver(BaseResolver):
    def __init__(self, path):
        self.path = path

    def resolve(self, request, handler):
        reply = request.reply()
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        records = RR.fromZone(text) if text.strip() else []
        name, qtype = request.q.qname, request.q.qtype
        named = [rr for rr in records if rr.rname == name]
        for rr in named:
            if qtype == QTYPE.ANY or rr.rtype == qtype:
                reply.add_answer(rr)
        if not named:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class Quiet:
    """dnslib's logger, silenced: the test reads only the port line."""

    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


def main():
    server = DNSServer(ZoneFileResolver(sys.argv[1]), address="127.0.0.1", port=0, logger=Quiet())
    server.start_thread()
    print(f"listening={server.server.server_address[1]}", flush=True)
    while server.isAlive():
        time.sleep(0.5)


if __name__ == "__main__":
    main()
