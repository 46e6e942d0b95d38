"""``python -m david_data`` runs the ``david-data`` command line."""

from .cli import run

run()
