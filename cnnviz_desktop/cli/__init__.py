"""Command-line tools. Every CLI reports user errors as one 'error: ...' line, never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

EXIT_USER_ERROR = 2


def run_cli(make_parser: Callable[[], argparse.ArgumentParser], argv: list[str] | None) -> int:
    """Parse ``argv`` and run the chosen command; CnnvizError -> message on stderr and exit 2."""
    from ..core.errors import CnnvizError

    args = make_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CnnvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
