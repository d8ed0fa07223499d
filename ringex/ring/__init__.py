"""Shared-memory rings, record layouts and wait strategies."""
