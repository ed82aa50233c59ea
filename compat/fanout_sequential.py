"""The baseline for issue #5's fan-out benchmark: a plain sequential script that publishes one
ZIP as a static resource into many orgs with simple-salesforce, one org after the other (find it
with a Tooling query; update its Body, or create it). Sessions are handed in ready-made, so the
script makes fewer calls per org than Lightbridge does (no sign-in).

Usage: fanout_sequential.py SESSIONS_JSON ZIP_FILE RESOURCE_NAME
Prints one JSON line: {"orgs": N, "seconds": S, "created": C, "updated": U}.
"""

import base64
import json
import sys
import time
import urllib.parse

from simple_salesforce import Salesforce


def main() -> None:
    sessions = json.load(open(sys.argv[1]))
    body = base64.b64encode(open(sys.argv[2], "rb").read()).decode()
    name = sys.argv[3]
    created = updated = 0
    started = time.monotonic()
    for s in sessions:
        sf = Salesforce(instance_url=s["instance_url"], session_id=s["access_token"], version="60.0")
        soql = f"SELECT Id FROM StaticResource WHERE Name = '{name}' AND NamespacePrefix = null"
        found = sf.toolingexecute("query/?q=" + urllib.parse.quote(soql))
        if found["records"]:
            sf.toolingexecute(f"sobjects/StaticResource/{found['records'][0]['Id']}", method="PATCH", data={"Body": body})
            updated += 1
        else:
            sf.toolingexecute(
                "sobjects/StaticResource",
                method="POST",
                data={"Name": name, "ContentType": "application/zip", "CacheControl": "Private", "Body": body},
            )
            created += 1
    print(json.dumps({"orgs": len(sessions), "seconds": time.monotonic() - started, "created": created, "updated": updated}))


if __name__ == "__main__":
    main()
