"""The record's reads and writes on one connection, one module per noun; this is their API.

releases.py      releases: added once, found by version
environments.py  environments: live ones by name, inserted, updated, their current release
deployments.py   deployments: inserted, status and run, approvers, history
approvals.py     approval requests and their decisions
matrix.py        which release runs where

Callers write `from environments.registry import record as rec` and `rec.get_environment(...)`.
"""

from environments.registry.record.approvals import (
    add_decision,
    get_approval,
    insert_approval,
    list_approvals,
    set_approval_state,
)
from environments.registry.record.deployments import (
    approvers_of,
    current_deployment,
    get_deployment,
    history,
    insert_deployment,
    open_deployments,
    set_deployment_status,
    set_override_reason,
    set_run_url,
)
from environments.registry.record.environments import (
    LIVE,
    deployed_release_of_type,
    environment_by_id,
    find_environment,
    get_environment,
    insert_environment,
    list_environments,
    set_current_release,
    update_environment,
)
from environments.registry.record.matrix import matrix
from environments.registry.record.releases import (
    add_release,
    get_release,
    list_releases,
    release_id,
)

__all__ = [
    "LIVE",
    "add_decision",
    "add_release",
    "approvers_of",
    "current_deployment",
    "deployed_release_of_type",
    "environment_by_id",
    "find_environment",
    "get_approval",
    "get_deployment",
    "get_environment",
    "get_release",
    "history",
    "insert_approval",
    "insert_deployment",
    "insert_environment",
    "list_approvals",
    "list_environments",
    "list_releases",
    "matrix",
    "open_deployments",
    "release_id",
    "set_approval_state",
    "set_current_release",
    "set_deployment_status",
    "set_override_reason",
    "set_run_url",
    "update_environment",
]
