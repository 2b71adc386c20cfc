"""Fakes shipped for tests and benchmarks (as Acme ships its fakes).

``LINEAR_POLICY_PATH`` is an algorithm folder for ``algorithm.path``: a fixed,
seeded linear policy that needs no parameter server.
"""

from pathlib import Path

LINEAR_POLICY_PATH = Path(__file__).parent / "linear_policy"
