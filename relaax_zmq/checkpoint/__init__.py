"""Checkpoints of parameter-server shards: HDF5 files on disk and in S3 (docs/checkpoints.md).

>>> manager = CheckpointManager(config.parameter_servers.checkpoint, shard=0, shards=2)  # doctest: +SKIP
>>> checkpoint = manager.restore()                  # newest valid one, disk or S3   # doctest: +SKIP
>>> if manager.due(global_step): manager.save(Checkpoint(...))                      # doctest: +SKIP
"""

from relaax_zmq.checkpoint.errors import CheckpointError
from relaax_zmq.checkpoint.hdf5 import FORMAT, FORMAT_VERSION, checksum, decode, encode
from relaax_zmq.checkpoint.keys import load_keys_file
from relaax_zmq.checkpoint.local import LocalLocation
from relaax_zmq.checkpoint.location import Entry, Location
from relaax_zmq.checkpoint.manager import (
    CheckpointManager,
    complete_steps,
    latest_complete_step,
    make_locations,
)
from relaax_zmq.checkpoint.naming import CheckpointName, checkpoint_name, parse_name
from relaax_zmq.checkpoint.record import Checkpoint
from relaax_zmq.checkpoint.retention import Inspection, Status, to_delete
from relaax_zmq.checkpoint.s3 import S3Location, make_s3_client
from relaax_zmq.checkpoint.triggers import SaveTrigger

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "CheckpointError",
    "CheckpointManager",
    "CheckpointName",
    "Entry",
    "Inspection",
    "LocalLocation",
    "Location",
    "S3Location",
    "SaveTrigger",
    "Status",
    "checkpoint_name",
    "checksum",
    "complete_steps",
    "decode",
    "encode",
    "latest_complete_step",
    "load_keys_file",
    "make_locations",
    "make_s3_client",
    "parse_name",
    "to_delete",
]
