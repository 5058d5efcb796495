#!/usr/bin/env bash
# Set up pbx-connector in a virtualenv, load the demo (a CSV phonebook profile on the
# example file, simulated and imported) into an SQLite store under ./.data, and serve the
# admin pages and the API. HOST and PORT choose where (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# python-ldap builds against OpenLDAP's headers; a fresh Debian lacks them (and venv).
APT_PACKAGES=(python3-venv libldap2-dev libsasl2-dev gcc python3-dev)
apt_install_missing "${APT_PACKAGES[@]}"
make_venv .

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
echo
echo "The store is $PBX_CONNECTOR_HOME/pbx-connector.db; the command line: $pbx --help"
echo "Now serving; open the URL below in a browser (Ctrl-C stops it)."
echo
exec $pbx serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8080}"
