"""Prefect flows over the david_data library: retries, concurrency, artifacts; no business logic."""
