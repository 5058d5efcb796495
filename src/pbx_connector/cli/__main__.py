"""`python -m pbx_connector.cli`."""

from pbx_connector.cli import main

main()
