"""Subcommands of the ``kgt5mm`` command line, one module each (see :mod:`kgt5mm.cli`)."""
