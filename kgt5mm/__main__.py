"""``python -m kgt5mm ...``: the ``kgt5mm`` command line (see :mod:`kgt5mm.cli`)."""

import sys

from kgt5mm.cli import main

if __name__ == "__main__":
    sys.exit(main())
