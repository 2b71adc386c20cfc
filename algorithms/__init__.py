"""Reinforcement-learning algorithms, one folder per algorithm (relaax_zmq.algorithms)."""
