"""The queue-flavoured async leaky bucket."""
