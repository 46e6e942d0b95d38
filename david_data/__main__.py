"""``python -m david_data`` runs the ``david-data`` command line."""

import sys

from .cli import main

sys.exit(main())
