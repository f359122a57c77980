"""Helpers the tests share: service processes and HTTP polling."""
