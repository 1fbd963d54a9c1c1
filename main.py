"""Train a flow from the terminal: ``python main.py --help``. The command line lives in :mod:`flows.cli`."""

import sys

from flows.cli import main

if __name__ == "__main__":
    sys.exit(main())
