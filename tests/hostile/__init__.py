"""Standing attacks: crashes, races, resource exhaustion and malformed input, each bounded
in time so that the suite runs in CI."""
