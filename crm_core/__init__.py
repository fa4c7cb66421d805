"""The CRM core: domain models, services, permissions and jobs.

Imports no web package (see ``[tool.importlinter]`` in pyproject.toml). Services take the
acting user and plain data, so the H5 pages, the JSON API, the WeChat router, jobs and CLI
commands all share the same rules.
"""
