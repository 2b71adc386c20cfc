"""Runtime and launch: what starts, wires and stops the daemons around the plugin API.

``sockets`` is the socket map (the topology as data), ``daemon`` what every daemon
shares (config, logging, signals), ``daemon_main`` the one ``__main__`` of the indexed
daemons (shard, learner, replay server), ``registry`` finds algorithms, ``local`` starts an
app's daemons on this machine, ``train`` trains an app with live progress
(``python -m relaax_zmq.runtime.train``), ``fresh_start`` sets an earlier run aside,
``admin_client`` talks to a broker's admin endpoint, ``backend`` chooses between the
compiled and the reference implementations, ``imports`` imports user code by path.
"""
