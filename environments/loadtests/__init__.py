"""Load tests: plans, runners, result readers, the aggregate report, criteria and verdicts."""
