"""Variants kept for limitor 0.6 users."""
