"""The domain core: environments, releases, deployments, approvals; no Slack, Azure or web."""
