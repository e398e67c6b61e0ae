"""Realm as code for a running Keycloak: make what the realm files declare true, keep the rest.

Keycloak's own import (`--import-realm`) creates a realm once and skips it forever after, so a
change to a realm file never reached a Keycloak that already had data. This package applies the
files through the admin API instead, on every `make up`: what a file declares is made to match
it, nothing it does not name is deleted (users, DCR- and CIMD-created clients, sessions and
consents live in the same realm), and a second run changes nothing.
"""
