#!/usr/bin/env bash
# Install what the tests need (Debian packages when run as root, a virtualenv) and run
# every check: lint, format, types, and the whole test suite on SQLite, PostgreSQL,
# slapd and a Samba AD DC.
# Extra arguments go to pytest, e.g. scripts/test.sh -k csv
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# Servers the tests start on loopback. Installed only when missing.
APT_PACKAGES=(
  postgresql python3-venv
  slapd ldap-utils samba samba-ad-dc samba-ad-provision smbclient winbind krb5-user
  libldap2-dev libsasl2-dev gcc python3-dev
  chromium
  kamailio kamailio-utils-modules sip-tester wrk
)

apt_install_missing "${APT_PACKAGES[@]}"
# The packages start servers of their own; the tests run private ones.
if [ "$(id -u)" = 0 ] && command -v service >/dev/null 2>&1; then
  for svc in postgresql slapd samba-ad-dc smbd nmbd winbind kamailio; do
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi

make_venv '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== layering"
.venv/bin/lint-imports
echo "== pytest"
# Two processes, a test file each (fixtures that start servers stay per file).
.venv/bin/pytest -q -n 2 --dist loadfile "$@"
