"""Marketing materials, QR previews, campaigns and share-path tracking.

The domain and blueprint arrive with the marketing issue; this package exists so the
dependency rules in ``pyproject.toml`` (import-linter) already hold for it.
"""
