"""The ``omnisync`` command line.

Each sub-command lives in its own module under ``omnisync_core.cli`` and exposes
``register(subparsers)``; heavy imports happen inside the command, never at start-up,
so ``omnisync --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import OmniSyncError

# Sub-command modules, in the order ``omnisync --help`` lists them.
COMMAND_MODULES = ["run", "stream", "tts", "transcribe", "talk", "info", "bench", "eval", "comfy", "model", "export",
                   "faces", "motion", "data", "train", "train_motion"]


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
    """Turn SIGTERM and SIGHUP (a closed terminal or ssh session) into KeyboardInterrupt, so outputs in
    progress are cleaned up as on Ctrl-C."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            try:
                signal.signal(getattr(signal, name), handler)
            except ValueError:  # not the main thread
                pass


class _WarningLines(logging.Handler):
    """Each library warning as one ``omnisync: warning: ...`` line on stderr, printed through tqdm so it
    never lands at the end of a progress bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(f"omnisync: warning: {record.getMessage()}", file=sys.stderr)


def _warnings_to_stderr() -> None:
    """The library's warnings as ``omnisync: warning: ...`` lines (info messages stay quiet)."""
    logger = logging.getLogger("omnisync_core")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        logger.addHandler(_WarningLines(level=logging.WARNING))
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    import os

    # Waiting OpenMP threads sleep instead of spinning (read when torch loads, so set before the parser
    # imports it): on a machine shared with other jobs a spinning thread steals the core its partner
    # needs; measured with a training run on the other core, the starter DiT ran 10x slower with 2
    # threads spinning, 1.2x slower with them passive (devices.fastest_thread_count then picks 1).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _stop_on_sigterm()
    _warnings_to_stderr()
    try:
        args = build_parser().parse_args(argv)
        result = args.func(args)
    except OmniSyncError as error:
        print(f"omnisync: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        try:  # after SIGHUP the terminal may be gone
            print("omnisync: interrupted; no output was written", file=sys.stderr)
        except OSError:
            pass
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `omnisync tts --list-voices | head`): not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
