"""``python -m kdlab`` runs the ``kdlab`` command (kdlab.cli.main)."""

import sys

from kdlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
