"""simple-salesforce against the Lightbridge Salesforce org emulator, unchanged, over HTTPS.

JWT bearer sign-in (simple-salesforce's login URLs are fixed to https://login.salesforce.com,
so a requests transport adapter sends them to the emulator), re-login after the user's
tokens are revoked, SOQL on REST and Tooling, StaticResource create / update / read / delete,
/limits and the identity URL.

Started by crates/emulator/tests/compat.rs, which passes the emulator's addresses in the
environment (REQUESTS_CA_BUNDLE names the emulator's CA file). By hand: see compat/README.md.
"""

import base64
import json
import os
import unittest
import urllib.request

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceResourceNotFound


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set (run through cargo test, see compat/README.md)")
    return value


HTTPS = env("EMULATOR_HTTPS_URL").rstrip("/")
ADMIN = env("EMULATOR_URL").rstrip("/") + "/__emulator"
CONSUMER_KEY = env("JWT_CLIENT_ID")
USERNAME = env("SF_USERNAME")
KEY_FILE = env("JWT_PRIVATE_KEY_FILE")


class ToEmulator(requests.adapters.HTTPAdapter):
    """Sends https://{login,test}.salesforce.com to the emulator's login hosts."""

    def send(self, request, **kwargs):
        for host, prefix in (("https://login.salesforce.com", "/hosts/login"), ("https://test.salesforce.com", "/hosts/test")):
            if request.url.startswith(host):
                request.url = HTTPS + prefix + request.url[len(host):]
        return super().send(request, **kwargs)


def session():
    s = requests.Session()
    s.mount("https://login.salesforce.com", ToEmulator())
    s.mount("https://test.salesforce.com", ToEmulator())
    return s


def admin(method, path):
    req = urllib.request.Request(ADMIN + path, method=method)
    with urllib.request.urlopen(req) as reply:
        body = reply.read()
        return json.loads(body) if body else None


def jwt_login():
    return Salesforce(username=USERNAME, consumer_key=CONSUMER_KEY, privatekey_file=KEY_FILE, domain="login", session=session())


class SimpleSalesforceAgainstTheEmulator(unittest.TestCase):
    def test_everything_lightbridge_needs(self):
        sf = jwt_login()
        self.assertTrue(sf.base_url.startswith("https://127.0.0.1:"), sf.base_url)
        self.assertEqual(sf.sf_version, "59.0")

        # Identity URL, from the org and user ids the token reply carried.
        org = sf.query("SELECT Id, Name, IsSandbox FROM Organization")
        self.assertEqual(org["totalSize"], 1)
        self.assertFalse(org["records"][0]["IsSandbox"])
        org_id = org["records"][0]["Id"]
        user = sf.query(f"SELECT Id, Username FROM User WHERE Username = '{USERNAME}'")["records"][0]
        identity = sf.session.get(f"{HTTPS}/id/{org_id}/{user['Id']}", headers=sf.headers).json()
        self.assertEqual(identity["username"], USERNAME)

        # Tooling SOQL and StaticResource CRUD through the sObject API.
        self.assertEqual(sf.toolingexecute("query/?q=SELECT+Id+FROM+StaticResource")["totalSize"], 0)
        body = base64.b64encode(b"body { color: teal }").decode()
        created = sf.StaticResource.create({"Name": "simple_salesforce_css", "ContentType": "text/css", "CacheControl": "Public", "Body": body})
        self.assertTrue(created["success"])
        rid = created["id"]
        self.assertEqual(sf.StaticResource.update(rid, {"Description": "from simple-salesforce"}), 204)
        record = sf.StaticResource.get(rid)
        self.assertEqual(record["Description"], "from simple-salesforce")
        self.assertEqual(record["BodyLength"], 20)
        found = sf.toolingexecute("query/?q=" + requests.utils.quote(
            "SELECT Id, Name FROM StaticResource WHERE Name = 'simple_salesforce_css' AND NamespacePrefix = null"))
        self.assertEqual(found["records"][0]["Id"], rid)
        raw = sf.session.get(f"{sf.base_url}sobjects/StaticResource/{rid}/Body", headers=sf.headers)
        self.assertEqual(raw.content, b"body { color: teal }")
        self.assertEqual(sf.StaticResource.delete(rid), 204)
        with self.assertRaises(SalesforceResourceNotFound):
            sf.StaticResource.get(rid)

        # /limits.
        limits = sf.limits()
        self.assertGreater(limits["DailyApiRequests"]["Max"], 0)
        self.assertIsNotNone(sf.api_usage.get("api-usage"), "Sforce-Limit-Info was parsed")

        # Revoke the user's tokens: the old session is refused with 401 INVALID_SESSION_ID and
        # simple-salesforce signs in again with a new JWT assertion (by itself, or when asked).
        admin("POST", f"/users/{USERNAME}/revoke")
        try:
            result = sf.query("SELECT Id FROM Organization")
        except SalesforceExpiredSession:
            result = jwt_login().query("SELECT Id FROM Organization")
        self.assertEqual(result["totalSize"], 1)
        log = admin("GET", "/requests")
        refused = [r for r in log if r["status"] == 401 and r["path"].endswith("/query")]
        self.assertEqual(len(refused), 1, "the revoked session was refused once")
        logins = [r for r in log if r["operation"] == "token:jwt_bearer" and r["status"] == 200]
        self.assertEqual(len(logins), 2, "signed in twice with a JWT assertion")


if __name__ == "__main__":
    unittest.main(verbosity=2)
