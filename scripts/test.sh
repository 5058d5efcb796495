#!/usr/bin/env bash
# Install what the tests need (Debian packages when run as root, a virtualenv) and run
# every check: lint, format, types, and the whole test suite on SQLite and PostgreSQL.
# Extra arguments go to pytest, e.g. scripts/test.sh -k csv
set -euo pipefail
cd "$(dirname "$0")/.."

# Servers the tests start on loopback. Installed only when missing.
APT_PACKAGES=(
  postgresql python3-venv
  slapd ldap-utils samba samba-ad-dc samba-ad-provision smbclient winbind krb5-user
  libldap2-dev libsasl2-dev gcc python3-dev
)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  # The package starts a cluster of its own; the tests run their own servers.
  if command -v service >/dev/null 2>&1; then
    for svc in postgresql slapd samba-ad-dc smbd nmbd winbind; do
      service "$svc" stop >/dev/null 2>&1 || true
    done
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -q "$@"
