"""Shared helpers: configuration, paths, logging, file hashing."""
