"""The ``omnisync`` command line.

Each sub-command lives in its own module under ``omnisync_core.cli`` and exposes
``register(subparsers)``; heavy imports happen inside the command, never at start-up,
so ``omnisync --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import OmniSyncError

# Sub-command modules, in the order ``omnisync --help`` lists them.
COMMAND_MODULES = ["run", "tts", "transcribe", "talk", "info", "bench", "eval", "comfy", "model", "faces", "data",
                   "train"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnisync",
        description="OmniSync lip-sync: re-voice a talking-face video with new speech.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `omnisync COMMAND --help` for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so outputs in progress are cleaned up."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


def main(argv: list[str] | None = None) -> int:
    _stop_on_sigterm()
    try:
        args = build_parser().parse_args(argv)
        result = args.func(args)
    except OmniSyncError as error:
        print(f"omnisync: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("omnisync: interrupted; no output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `omnisync tts --list-voices | head`): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
