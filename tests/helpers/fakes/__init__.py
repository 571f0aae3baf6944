"""Local fakes of external services, reached over real sockets."""
