"""Write envs/js/test/fixtures/cartpole_gymnasium.json: CartPole-v1 trajectories by gymnasium.

The JS CartPole (envs/js/src/cartpole.js) must reproduce them: each trajectory starts from a
given float64 state, applies the given actions and records gymnasium's float64 state, float32
observation, reward and terminated flag after every step, until termination or ``STEPS``.
Run: ``.venv/bin/python envs/js/scripts/make_cartpole_fixture.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "cartpole_gymnasium.json"
STEPS = 60
#: (name, initial state, action rule): a random policy, a steady push (x fails), a leaning pole
CASES = (
    ("random_policy", [0.01, -0.02, 0.03, 0.04], "random"),
    ("push_right", [2.0, 1.5, 0.0, 0.0], "right"),
    ("pole_falls_left", [0.0, 0.0, -0.15, -0.5], "left"),
)


def trajectory(name: str, start: list[float], rule: str, rng: np.random.Generator) -> dict:
    env = gymnasium.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    env.state = np.array(start, dtype=np.float64)
    steps = []
    for _ in range(STEPS):
        action = {"right": 1, "left": 0}.get(rule, int(rng.integers(2)))
        obs, reward, terminated, _, _ = env.step(action)
        steps.append(
            {
                "action": action,
                "state": [float(v) for v in env.state],
                "observation": [float(v) for v in obs],
                "reward": float(reward),
                "terminated": bool(terminated),
            }
        )
        if terminated:
            break
    return {"name": name, "start": start, "steps": steps}


def main() -> None:
    rng = np.random.default_rng(0)
    data = {
        "generator": "envs/js/scripts/make_cartpole_fixture.py",
        "gymnasium": gymnasium.__version__,
        "trajectories": [trajectory(*case, rng) for case in CASES],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
