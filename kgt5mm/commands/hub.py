"""``kgt5mm hub``: share a saved model folder on the Hugging Face Hub, or fetch one.

::

    kgt5mm hub push checkpoints/wn9_img_cpu/model user/kgt5mm-wn9-img [--private]
    kgt5mm hub download user/kgt5mm-wn9-img --output-dir models/wn9

``push`` re-saves the folder through :class:`kgt5mm.hub.KGT5MMModel` (so the model card and
config are current) and uploads it with ``huggingface_hub``; authentication comes from
``--token`` or the usual ``HF_TOKEN`` / ``huggingface-cli login``.
"""

from __future__ import annotations

import argparse

__all__ = ["register", "run_download", "run_push"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``hub`` command with ``push`` and ``download``."""
    parser = subparsers.add_parser("hub", help="push a model folder to the Hub or download one",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="hub_command", metavar="ACTION", required=True)
    push = sub.add_parser("push", help="upload a saved model folder")
    push.add_argument("model", help="model folder written by save_pretrained / training")
    push.add_argument("repo_id", help="Hub repository, e.g. user/kgt5mm-wn9-img")
    push.add_argument("--private", action="store_true", help="create a private repository")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN / login)")
    push.add_argument("--message", default="Upload kgt5mm model", help="commit message")
    push.set_defaults(handler=run_push)
    down = sub.add_parser("download", help="download a model and save it as a local folder")
    down.add_argument("repo_id", help="Hub repository id")
    down.add_argument("--output-dir", required=True, help="local folder to write")
    down.add_argument("--revision", default=None, help="branch, tag or commit")
    down.add_argument("--token", default=None, help="Hub token for private repositories")
    down.set_defaults(handler=run_download)


def run_push(args: argparse.Namespace) -> int:
    """Handler of ``kgt5mm hub push``."""
    from kgt5mm.hub import KGT5MMModel

    model = KGT5MMModel.from_pretrained(args.model)
    info = model.push_to_hub(args.repo_id, token=args.token, private=args.private,
                             commit_message=args.message)
    print(f"pushed {args.model} to {args.repo_id}: {info}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Handler of ``kgt5mm hub download``."""
    from kgt5mm.hub import KGT5MMModel

    model = KGT5MMModel.from_pretrained(args.repo_id, revision=args.revision, token=args.token)
    path = model.save_pretrained(args.output_dir)
    print(f"saved {args.repo_id} to {path}")
    return 0
