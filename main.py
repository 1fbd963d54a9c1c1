"""Train a flow from the terminal: ``python main.py --help``. The command line lives in :mod:`flows.cli`."""

import sys

try:
    from flows.cli import main
except KeyboardInterrupt:  # Ctrl-C while torch and the library load: nothing has started yet
    print("main.py: error: interrupted while starting; nothing was created or trained", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
