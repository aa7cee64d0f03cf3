"""`python -m glassbox ...`: the `glassbox` command where no console script is installed."""

from glassbox.cli import main

main()
