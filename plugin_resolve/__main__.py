"""`python -m plugin_resolve --prompt ...`: the same as `ipfacediff resolve-edit` (outside Resolve, Studio)."""

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main(["resolve-edit", *sys.argv[1:]]))
