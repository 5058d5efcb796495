"""Talking to LDAP directories: one connection layer for the sync sources and for
authentication (escaping, connecting with TLS and fail-over, paged search, values)."""
