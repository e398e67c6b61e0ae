"""Helpers shared by the tests: the checkout's stack settings and HTTPS clients that trust
the local CA (never verification turned off)."""
