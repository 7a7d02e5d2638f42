"""Utilities for people who extend ``collusion``: the detector conformance checks."""
