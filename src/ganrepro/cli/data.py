"""``ganrepro data``: fetch and check the image track's data sets (docs/images.md#data-sets).

    ganrepro data download NAME --data-dir DIR   fetch mnist's or fashion-mnist's four .gz files into DIR
                                                 (each checked against its published MD5 before it is written)
    ganrepro data check NAME [--data-dir DIR]    load NAME as a run would, every file checked; print how each
                                                 file passed, the split sizes and the content SHA-256

``--data-dir`` defaults to ``$GANREPRO_DATA_DIR``; ``digits8`` ships with scikit-learn and needs
neither. The work is ``ganrepro.image.data``'s; this module parses, prints and maps its errors
(``DataError``: exit 2; a failed download, ``EnvironmentFault``: exit 1). Like the other commands it
has ``validate(args)`` and ``execute(args, *checked)``; ``main(args)`` runs both and turns an error
into one line ``ganrepro: error: ...`` on stderr. Loads no framework.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import EXIT_ENVIRONMENT, EnvironmentFault, UsageError
from ..image import data
from .common import check_out_flag, error, os_error_text


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` command (subcommands ``download`` and ``check``) to an argparse subparsers object."""
    names = ", ".join(data.DATASETS)
    parser = subparsers.add_parser(
        "data", help="download or check the image data sets (digits8, mnist, fashion-mnist)",
        description="The image track's data sets: digits8 ships with scikit-learn; mnist and fashion-mnist are "
                    "read from their four IDX files (raw or .gz) in --data-dir or $GANREPRO_DATA_DIR, each "
                    "checked (IDX header, sizes, published checksums) before use.")
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=type(parser))
    sub.required = True
    download = sub.add_parser(
        "download", help="fetch the four .gz files of mnist or fashion-mnist",
        description="Fetch the four .gz files of NAME into DIR; each is checked against its published MD5 "
                    "before it is written, and a file already there with that MD5 is kept. digits8 needs no "
                    "download.")
    download.add_argument("name", choices=data.DATASETS, metavar="NAME", help=f"the data set: {names}")
    download.add_argument("--data-dir", default=None, metavar="DIR",
                          help=f"where to put the files (created if needed; default ${data.DATA_DIR_ENV})")
    check = sub.add_parser(
        "check", help="load a data set, checking every file; print the split sizes and content SHA-256",
        description="Load NAME exactly as a run would (every file checked) and print how each file passed, "
                    "the train / validation / test sizes and the content SHA-256 of the splits.")
    check.add_argument("name", choices=data.DATASETS, metavar="NAME", help=f"the data set: {names}")
    check.add_argument("--data-dir", default=None, metavar="DIR",
                       help=f"the folder of the IDX files (default ${data.DATA_DIR_ENV}; not used by digits8)")
    return parser


def _download_dir(args: argparse.Namespace):
    """The folder to download into (checked to be usable), or None for digits8."""
    if args.name not in data.IDX_DATASETS:
        return None
    text = args.data_dir if args.data_dir is not None else os.environ.get(data.DATA_DIR_ENV, "")
    if not text.strip():
        raise UsageError(f"ganrepro data download {args.name} needs --data-dir DIR (or ${data.DATA_DIR_ENV}): "
                         "the folder to put the four .gz files in")
    return check_out_flag(text, "--data-dir" if args.data_dir is not None else f"${data.DATA_DIR_ENV}")


def validate(args: argparse.Namespace):
    """(the data set's name, its folder or None), checked before anything is fetched or read."""
    name = data.check_name(args.name)
    if args.data_command == "download":
        return name, _download_dir(args)
    folder = data.resolve_data_dir(name, args.data_dir) if name in data.IDX_DATASETS else None
    return name, folder


def execute(args: argparse.Namespace, name: str, folder) -> int:
    """Download, or load and report; the exit status."""
    if args.data_command == "download":
        for path in data.download(name, folder, log=print):
            print(f"wrote {path}")
        return 0
    loaded = data.load_dataset(name, folder)
    size = loaded.image_size
    print(f"{name}: {size}x{size} images, {data.NUM_CLASSES} classes")
    for line in loaded.sources:
        print(f"  {line}")
    for split, count in loaded.split_sizes.items():
        print(f"  {split:<11} {count:>6}")
    print(f"  content sha256 {loaded.content_sha256}")
    return 0


def main(args: argparse.Namespace) -> int:
    """Run ``ganrepro data`` on parsed ``args``; errors become one line on stderr and an exit status."""
    try:
        return execute(args, *validate(args))
    except (UsageError, EnvironmentFault) as exc:
        return error(str(exc), exc.exit_code)
    except OSError as exc:
        return error(os_error_text(exc), EXIT_ENVIRONMENT)
    except KeyboardInterrupt:
        print("ganrepro: interrupted", file=sys.stderr)
        return 130
