"""Fakes shipped for tests and benchmarks (as Acme ships its fakes).

``LINEAR_POLICY_PATH`` is an algorithm folder for ``algorithm.path``: a fixed,
seeded linear policy that needs no parameter server. ``LINEAR_PG_PATH`` is a
learning one: a linear softmax policy trained by REINFORCE through the
parameter servers.
"""

from pathlib import Path

LINEAR_POLICY_PATH = Path(__file__).parent / "linear_policy"
LINEAR_PG_PATH = Path(__file__).parent / "linear_pg"
