"""`python -m pbx_connector.cli`: the same entry point as the console script."""

from pbx_connector.entry import main

main()
