"""Compute: Spark Connect servers for task processes (Sail embedded, Apache Spark local, or remote).

``server`` starts and stops one server process; ``manager`` gives each job run its job clusters;
``clusters`` keeps named all-purpose clusters. Importing this package imports nothing heavy.
"""
