"""Background jobs run by RQ workers (or the in-process runner when REDIS_URL is unset).

One module per job; each job takes plain arguments and opens its own database session.
"""
