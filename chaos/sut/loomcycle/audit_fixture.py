"""Minimal tables named like loomcycle's, for testing and timing our audit triggers.

They hold only the columns the triggers and the reader touch.  They are a
fixture for *our* triggers on a bare Postgres, not a stand-in for loomcycle.
"""

from __future__ import annotations

FIXTURE_TABLES = """
CREATE TABLE runs (
    id text PRIMARY KEY, agent_id text, user_id text, status text NOT NULL,
    stop_reason text, completed_at timestamptz
);
CREATE TABLE user_quotas (
    tenant_id text NOT NULL DEFAULT '', user_id text NOT NULL,
    active_count integer NOT NULL DEFAULT 0 CHECK (active_count >= 0),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE TABLE replicas (id text PRIMARY KEY, last_heartbeat_at timestamptz NOT NULL DEFAULT now());
"""
