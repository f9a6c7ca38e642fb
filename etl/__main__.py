"""`python -m etl` runs the same CLI as `numbers-etl`."""

from etl.cli import main

main()
