"""The typed contracts of the application core: what its functions take and return, and
what the API and the pages show. Secrets are write-only: no model returns one."""
