"""The record's tables (SQLAlchemy Core); Alembic migrations create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores naive UTC; always hands back aware UTC datetimes, on SQLite and PostgreSQL alike."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware ones")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


releases = sa.Table(
    "releases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.String(64), nullable=False, unique=True),
    sa.Column("artifact", sa.Text, nullable=False),
    sa.Column("build_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("commit", sa.String(64), nullable=False, server_default=""),
    sa.Column("added_by", sa.String(128), nullable=False),
    sa.Column("added_at", UTCDateTime, nullable=False),
    # The pipeline run that built it (Azure DevOps run id and name), its artifact, its ref.
    sa.Column("build_run", sa.Integer, nullable=True),
    sa.Column("build_number", sa.String(128), nullable=False, server_default=""),
    sa.Column("build_artifact", sa.String(256), nullable=False, server_default=""),
    sa.Column("source_ref", sa.String(256), nullable=False, server_default=""),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("warned_at", UTCDateTime, nullable=True),
    sa.Column("destroyed_at", UTCDateTime, nullable=True),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=True),
    sa.Column("release_since", UTCDateTime, nullable=True),
    sa.Column("release_by", sa.String(128), nullable=True),
    sa.Column("release_deployment_id", sa.Integer, nullable=True),
    sa.Column("endpoint", sa.Text, nullable=True),
    sa.Column("outputs", sa.JSON, nullable=False, default=dict),
    sa.Column("overrides", sa.JSON, nullable=False, default=dict),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("lock_operation_id", sa.Integer, nullable=True),
    sa.Column("lock_until", UTCDateTime, nullable=True),
    # The latest health probe, denormalised like the current release (one read for the table).
    sa.Column("health_status", sa.String(16), nullable=True),
    sa.Column("health_reason", sa.Text, nullable=True),
    sa.Column("health_at", UTCDateTime, nullable=True),
    sa.Index(
        "uq_environments_live_name",
        "name",
        unique=True,
        sqlite_where=sa.text("state != 'destroyed'"),
        postgresql_where=sa.text("state != 'destroyed'"),
    ),
    sa.Index("ix_environments_release_id", "release_id"),
    sa.Index("ix_environments_state_type", "state", "type"),
    sa.Index("ix_environments_name", "name"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("environment_id", sa.Integer, sa.ForeignKey("environments.id"), nullable=False),
    sa.Column("release_id", sa.Integer, sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("source_environment_id", sa.Integer, nullable=True),
    sa.Column("parameters_fingerprint", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    # What the deployment rendered (secrets as references only), and what it was asked to apply.
    sa.Column("parameters", sa.JSON, nullable=True),
    sa.Column("secret_refs", sa.JSON, nullable=True),
    sa.Column("overrides", sa.JSON, nullable=True),
    sa.Column("environment_parameters", sa.JSON, nullable=True),
    # The Azure DevOps run that carried the deployment out, if a pipeline did.
    sa.Column("run_url", sa.String(1024), nullable=True),
    # Why it went ahead although its release's load test blocked it (kept after it ends).
    sa.Column("override_reason", sa.Text, nullable=True),
    sa.Index("ix_deployments_environment_id_id", "environment_id", "id"),
    sa.Index("ix_deployments_run_url", "run_url"),
    sa.Index("ix_deployments_release_id", "release_id"),
    sa.Index("ix_deployments_status", "status"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "deployment_id", sa.Integer, sa.ForeignKey("deployments.id"), nullable=False, unique=True
    ),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("required", sa.Integer, nullable=False),
    sa.Column("approvers", sa.JSON, nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Index("ix_approvals_state", "state"),
)

approval_decisions = sa.Table(
    "approval_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("approval_id", sa.Integer, sa.ForeignKey("approvals.id"), nullable=False),
    sa.Column("person", sa.String(128), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("approval_id", "person"),
)

operations = sa.Table(
    "operations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("environment_id", sa.Integer, sa.ForeignKey("environments.id"), nullable=False),
    sa.Column("deployment_id", sa.Integer, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("step", sa.String(32), nullable=False, server_default=""),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_operations_state", "state"),
    sa.Index("ix_operations_environment_id", "environment_id"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(48), nullable=False),
    sa.Column("environment", sa.String(40), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False, default=dict),
    sa.Index("ix_audit_events_environment_id", "environment", "id"),
    sa.Index("ix_audit_events_action_id", "action", "id"),
)

chat_messages = sa.Table(
    "chat_messages",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

request_keys = sa.Table(
    "request_keys",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("seen_at", UTCDateTime, nullable=False),
)

# A Slack delivery, recorded (its body without the verification token) before it is
# acknowledged: `pending` until a replica's follow-up work takes it (`taken`, at most once);
# `replaying` while another replica re-dispatches one whose replica died after the ack.
slack_deliveries = sa.Table(
    "slack_deliveries",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("taken_by", sa.String(128), nullable=True),
    sa.Column("taken_at", UTCDateTime, nullable=True),
    sa.Index("ix_slack_deliveries_state_received_at", "state", "received_at"),
)

loadtest_runs = sa.Table(
    "loadtest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("environment", sa.String(40), nullable=False),
    sa.Column("environment_type", sa.String(40), nullable=False),
    sa.Column("release", sa.String(64), nullable=False),
    sa.Column("plan", sa.String(64), nullable=False),
    sa.Column("engine", sa.String(32), nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("load", sa.JSON, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("report", sa.JSON, nullable=True),
    sa.Column("criteria", sa.JSON, nullable=True),
    sa.Column("baseline_run_id", sa.Integer, nullable=True),
    sa.Column("comparison", sa.JSON, nullable=True),
    sa.Column("folder", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # Whether the run's verdict decides promotion (the plan is a gate), the runs it was judged
    # against, its one-line explanation, and the schedule that started it (None: a person did).
    sa.Column("gate", sa.Boolean, nullable=True),
    sa.Column("baseline_runs", sa.JSON, nullable=True),
    sa.Column("verdict", sa.Text, nullable=True),
    sa.Column("schedule", sa.String(64), nullable=True),
    sa.Index("ix_loadtest_runs_release_plan", "release", "plan", "environment_type"),
    sa.Index("ix_loadtest_runs_environment_id", "environment", "id"),
    sa.Index("ix_loadtest_runs_plan_id", "plan", "id"),
)

health_checks = sa.Table(
    "health_checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("environment_id", sa.Integer, sa.ForeignKey("environments.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_health_checks_environment_id_id", "environment_id", "id"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # What people see and name a token by (its first characters); the secret is only hashed.
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("env_type", sa.String(40), nullable=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
)

# A run's raw latency samples (samplesets.SampleSet.to_bytes): a later run's baseline.
loadtest_samples = sa.Table(
    "loadtest_samples",
    metadata,
    sa.Column(
        "run_id",
        sa.Integer,
        sa.ForeignKey("loadtest_runs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("environment", sa.String(40), nullable=True),
    sa.Column("operation_id", sa.Integer, nullable=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("delivered_to", sa.String(96), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # Set before a send that cannot be read back (a response_url post): a deliverer that finds
    # it on a retry knows an earlier attempt may have sent the event.
    sa.Column("intent", sa.String(32), nullable=True),
    sa.Index("ix_outbox_delivered_at_id", "delivered_at", "id"),
    sa.Index("ix_outbox_operation_id", "operation_id"),
)

reply_routes = sa.Table(
    "reply_routes",
    metadata,
    sa.Column("operation_id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(64), nullable=True),
    sa.Column("thread_ts", sa.String(32), nullable=True),
    sa.Column("response_url", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# APScheduler's job store table, declared here so the migration creates it: the scheduler
# thread then never runs DDL at start (SQLite's "database is locked" killed it there).
schedule_jobs = sa.Table(
    "shipyard_schedule_jobs",
    metadata,
    sa.Column("id", sa.Unicode(191), primary_key=True),
    sa.Column("next_run_time", sa.Float(25), index=True),
    sa.Column("job_state", sa.LargeBinary, nullable=False),
)
