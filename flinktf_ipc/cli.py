"""The ``flinktf-ipc`` command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flinktf-ipc", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("demo", help="run the demonstration job", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.cmd == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    return 2


if __name__ == "__main__":
    sys.exit(main())
