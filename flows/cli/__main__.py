"""``python -m flows.cli``: the same command as ``python main.py``."""

import sys

from flows.cli import main

sys.exit(main())
