"""The shared store: served turns with feedback, the feedback audit, routes and their audit.

A SQLite file written before migrations keeps its ``chat_turns`` rows: the table gains the
new columns in place. Routes from ``routes.yaml`` are imported by the route store on first use.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from workbench.store import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    have = set(sa.inspect(bind).get_table_names())
    if "chat_turns" in have:  # written by an earlier release: add what is missing
        cols = {c["name"] for c in sa.inspect(bind).get_columns("chat_turns")}
        with op.batch_alter_table("chat_turns") as batch:
            for col in schema.chat_turns.columns:
                if col.name not in cols:
                    batch.add_column(sa.Column(col.name, col.type, nullable=True))
        indexes = {i["name"] for i in sa.inspect(bind).get_indexes("chat_turns")}
        for index in schema.chat_turns.indexes:
            if index.name not in indexes:
                index.create(bind)
    for table in schema.metadata.sorted_tables:
        if table.name not in have:
            table.create(bind)  # with its indexes


def downgrade() -> None:
    for name in ("route_audit", "routes", "feedback_audit"):
        op.drop_table(name)
