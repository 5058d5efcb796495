#!/usr/bin/env bash
# Set up pbx-connector in a virtualenv and run the demo: a CSV phonebook profile on the
# example file, simulated, imported and listed, in an SQLite store under ./.data.
set -euo pipefail
cd "$(dirname "$0")/.."

# python-ldap builds against OpenLDAP's headers; a fresh Debian lacks them (and venv).
APT_PACKAGES=(python3-venv libldap2-dev libsasl2-dev gcc python3-dev)
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
elif ! [ -e /usr/include/ldap.h ]; then
  echo "python-ldap needs: sudo apt-get install ${APT_PACKAGES[*]}" >&2
  exit 1
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .

export PBX_CONNECTOR_HOME=${PBX_CONNECTOR_HOME:-$PWD/.data}
pbx=.venv/bin/pbx-connector

say() { printf '\n$ %s\n' "$*"; "$@"; }

if ! $pbx profile show demo-phonebook >/dev/null 2>&1; then
  say $pbx profile create demo-phonebook --template csv-phonebook \
    --set path="$PWD/examples/phonebook.csv"
fi
say $pbx preview demo-phonebook --limit 2
say $pbx sync demo-phonebook --dry-run
say $pbx sync demo-phonebook
say $pbx phonebook list
say $pbx runs demo-phonebook
echo
echo "The store is $PBX_CONNECTOR_HOME/pbx-connector.db; try: $pbx --help"
