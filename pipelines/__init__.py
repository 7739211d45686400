"""The Azure DevOps side: pipeline templates, the runs client, the plugin steps."""
