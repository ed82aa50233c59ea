#!/usr/bin/env bash
# Installs the real Salesforce client libraries the compatibility suite runs against the
# emulator: jsforce from npm (exact version in package-lock.json) and simple-salesforce from
# PyPI into compat/.venv, with the other test tools from PyPI: openpyxl (reads our XLSX
# exports), dnslib (the DNS server of the email-domain proof tests), aiosmtpd (the SMTP server
# the e-mail tests send to) and standardwebhooks (the
# official Standard Webhooks library the webhook tests verify deliveries with). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
