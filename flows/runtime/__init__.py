"""Running a dataflow: the runner thread, recovery, source positions, the Redis bus."""
