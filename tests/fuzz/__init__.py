"""Coverage-guided fuzzing of what relaax-zmq decodes from peers (atheris, libFuzzer).

``python -m tests.fuzz TARGET --seconds N [--corpus DIR]`` (from the repository root)
runs one target under atheris in a child process, with the relaax_zmq modules it
exercises instrumented, and ends with one JSON line of figures (executions, execs/s,
coverage, findings). docs/security.md ("Fuzzing") says what each target checks. The
harness lives beside the tests, not in the package: the wheel ships what users run.

Targets (one module each, ``test_one_input(data)`` raises on a finding):

- ``codec``: the RLX decoders (reference, compiled, ``envelope.peek``) on arbitrary frames;
- ``broker``: the broker's client-frontend and worker-backend handlers on message sequences;
- ``shard``: a parameter-server shard's message handling and publishing;
- ``metrics``: the metrics collector's batch decoder;
- ``gateway``: the WebSocket envelope and the RLX message in it, as the gateway and its
  clients decode them;
- ``learner``: the experience wire (learners, replay servers) and the learner's intake.

This package imports nothing from relaax_zmq at import time, so that the engine can
instrument every module a target loads. Its modules import each other relatively: the
tests import it as ``fuzz`` (tests/ is on their path), the command line as ``tests.fuzz``.
"""

#: Target name -> module of this package.
TARGETS = {
    "codec": "codec_target",
    "broker": "broker_target",
    "shard": "shard_target",
    "metrics": "metrics_target",
    "gateway": "gateway_target",
    "learner": "learner_target",
}

__all__ = ["TARGETS"]
