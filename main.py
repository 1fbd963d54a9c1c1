"""Train a flow from the terminal: ``python main.py --help``. The command line lives in :mod:`flows.cli`."""

import signal
import sys

INTERRUPTED = "main.py: error: interrupted while starting; nothing was created or trained"

try:
    # Ctrl-C while torch and the library load is remembered, not raised: a KeyboardInterrupt inside
    # torch's C start-up can be swallowed there and leave numpy half-imported.
    _signals: list[int] = []
    _previous = signal.signal(signal.SIGINT, lambda signum, frame: _signals.append(signum))
    from flows.cli import main

    signal.signal(signal.SIGINT, _previous)
except KeyboardInterrupt:  # before the handler above was installed
    _signals = [signal.SIGINT]
if _signals:
    print(INTERRUPTED, file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
