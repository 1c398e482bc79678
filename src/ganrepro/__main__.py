"""``python -m ganrepro``: the same command line as the ``ganrepro`` console script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
