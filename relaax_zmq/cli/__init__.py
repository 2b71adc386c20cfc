"""``relaax-zmq``: the admin command line of relaax-zmq apps (docs/cli.md).

One module per subcommand (``new``, ``run``, ``status``, ``stop``, ``restart``, ``logs``,
``generate``, ``config``, ``checkpoints``, ``export``, ``play``, ``plot``), each with
``add_arguments(parser)`` and ``run(args) -> int``; ``main`` dispatches. The daemons of
an app run under supervisord (``supervisor.py``), one program per daemon, configured in
the app's run folder (``runfolder.py``).
"""
