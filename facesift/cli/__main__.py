"""`python -m facesift.cli`: the same command line as `facesift` and `python -m facesift`."""

from facesift.cli import main

main()
