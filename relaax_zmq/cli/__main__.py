"""``python -m relaax_zmq.cli``: the same as the ``relaax-zmq`` console script."""

from relaax_zmq.cli.main import main

raise SystemExit(main())
