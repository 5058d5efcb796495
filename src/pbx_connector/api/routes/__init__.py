"""Routes of `/api/v1`, one module per subject."""
