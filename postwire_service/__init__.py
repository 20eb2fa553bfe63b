"""The service entry point: the top of the house.

The operator commands of `postwire` (cli: dev, server, worker, scheduler, migrate, keys,
prune, config, check), the deployment checks (check) and the embedded mode that runs
server, workers and scheduler in one process with a local SMTP capture (embedded,
capture). The only package that imports both server/ and workers/, which never import
each other; nothing imports it back (docs/architecture.md).
"""
