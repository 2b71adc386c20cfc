"""The selected RLX codec: compiled when it loads, else the reference."""

from relaax_zmq.runtime.backend import backend_name, load

_codec = load("relaax_zmq._codec", "relaax_zmq.protocol.reference")

encode = _codec.encode
decode = _codec.decode
BACKEND = backend_name(_codec)
