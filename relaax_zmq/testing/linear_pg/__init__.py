"""A learning test algorithm: a linear softmax policy trained by REINFORCE through the shards.

``algorithm.config`` keys (``LinearPGConfig``): ``actions``, ``state_size``,
``batch_size`` (transitions per pushed gradient), ``gamma`` (discount),
``learning_rate``, ``optimizer`` (sgd, rmsprop or adam), ``init_scale``,
``seed``. The model is ``logits = x @ W + b``, one flat vector ``[W.ravel(), b]``
served by the parameter servers; gradients are computed with numpy
(``policy.py``). Exploit sessions act greedily and push nothing. It learns the
multi-armed bandit (``relaax_zmq.envs.bandit``) in a few hundred gradients.
"""

from relaax_zmq.core import Algorithm

from .agent import linear_pg_agent
from .config import LinearPGConfig
from .server import linear_pg_server

ALGORITHM = Algorithm("linear_pg", LinearPGConfig, linear_pg_agent, linear_pg_server)
