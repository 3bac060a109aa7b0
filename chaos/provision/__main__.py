"""``python -m chaos.provision [--image-source local|public]``: provision, print what and how long.

Exit 0 when the infrastructure is ready (even if loomcycle is unavailable: the
summary says why); exit 2 with one line when something it needs cannot be had.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chaos.errors import SetupError
from chaos.provision import format_summary, provision


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.provision", description=__doc__)
    parser.add_argument("--image-source", choices=("local", "public"), default=None)
    args = parser.parse_args(argv)
    try:
        result = provision(
            args.image_source, progress=lambda line: print(f"  .. {line}", flush=True)
        )
    except SetupError as exc:
        print(f"loomchaos setup: {exc}", file=sys.stderr)
        return 2
    print(format_summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
