"""``python -m smar_sdk`` runs the command line."""

from .cli import main

main()
