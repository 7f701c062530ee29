"""`python -m costmw.cli`: the same as the `costmw` command."""

from . import main

main()
