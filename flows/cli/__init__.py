"""The training command, ``python main.py`` and ``flowlab-train``: :func:`main` (``command.py``), its
arguments (``parser.py``) and what it prints (``output.py``)."""

from .command import EXIT_FAILED, EXIT_FINISHED, EXIT_SIGNAL, StopRequest, Trainer, entry_point, main
from .output import Progress, one_line
from .parser import EXIT_USAGE, build_parser, make_config

__all__ = [
    "EXIT_FAILED",
    "EXIT_FINISHED",
    "EXIT_SIGNAL",
    "EXIT_USAGE",
    "Progress",
    "StopRequest",
    "Trainer",
    "build_parser",
    "entry_point",
    "main",
    "make_config",
    "one_line",
]
