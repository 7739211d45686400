"""The use cases on environments, one module per concern; `Lifecycle` offers them all.

- requesting.py  what they share: services, recording a deployment request, the deploy window
- create.py      create, extend, destroy
- deploy.py      add a release, deploy, change an environment's parameters
- promote.py     promote along the path, approve, reject
- expiry.py      the expiry sweep
"""

from environments.lifecycle.create import Creating
from environments.lifecycle.deploy import Deploying
from environments.lifecycle.expiry import Expiring, SweepReport
from environments.lifecycle.promote import Promoting
from environments.lifecycle.requesting import SYSTEM, Preflight, Requested

__all__ = ["SYSTEM", "WARN_BEFORE", "Lifecycle", "Preflight", "Requested", "SweepReport"]


class Lifecycle(Creating, Deploying, Promoting, Expiring):
    """Every change to environments goes through here: policy first, then one transaction."""
