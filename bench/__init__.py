"""Benchmarks of the Triggers API against ceilings measured in the same run (``make bench``)."""
