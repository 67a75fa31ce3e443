"""LLM token buckets: requests and tokens per minute in one limiter."""
