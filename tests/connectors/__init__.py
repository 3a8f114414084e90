"""Connector conformance suite and connector-specific tests."""
