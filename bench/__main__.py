"""Entry point: ``python -m bench [--quick]``."""

from .run import main

raise SystemExit(main())
