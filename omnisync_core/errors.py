"""The one exception type users see: a message that says what is wrong and what to do."""


class OmniSyncError(Exception):
    """A problem with the user's input or setup, explained in one line.

    The command line prints ``str(error)`` without a traceback and exits with status 2;
    the ComfyUI nodes let it surface as the node's error message.
    """


def warn(message: str) -> None:
    """Tell the user about something that does not stop the job (the CLI prints ``omnisync: warning: ...``,
    ComfyUI shows it in its console)."""
    import logging

    logging.getLogger("omnisync_core").warning(message)
