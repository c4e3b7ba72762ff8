"""The ``webhooks`` command-line tool and the local runtime (development only)."""
