"""Code that more than one service needs: settings, logging, stores, the request boundary.

This package imports no service package; services depend on it, never the reverse.
"""
