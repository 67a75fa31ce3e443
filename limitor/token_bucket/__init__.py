"""Token bucket rate limiters."""
