"""Subcommands of the ``kgt5mm`` command line, one module each (see :mod:`kgt5mm.cli`)."""

import sys

__all__ = ["close_process_group"]


def close_process_group() -> None:
    """Destroy ``torch.distributed``'s default process group if this process opened one.

    Entry points call it on their way out. A gloo process that exits with its group still
    alive can abort during interpreter shutdown ("terminate called without an active
    exception"): the group's worker threads are torn down after Python. Without torch
    imported there is no group, and nothing is imported here.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
