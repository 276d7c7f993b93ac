"""The built-in topologies, one module each, each defining TOPOLOGY (see ../model.py)."""
