"""The error every checkpoint failure raises."""

from __future__ import annotations

from relaax_zmq.errors import RelaaxError


class CheckpointError(RelaaxError):
    """A checkpoint cannot be written, read or trusted; the text names the file and the fault."""
