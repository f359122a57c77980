"""The movies REST API, protected by access tokens."""
