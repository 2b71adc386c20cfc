"""``python -m relaax_zmq.envs --config app.yaml`` (see ``relaax_zmq.envs.launch``)."""

import sys

from relaax_zmq.envs.launch import main

sys.exit(main())
