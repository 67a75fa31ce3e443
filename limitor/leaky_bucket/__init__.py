"""Leaky bucket rate limiters."""
