"""Delivery of accepted cases to the court registry: retries, circuit breaker, worker."""
