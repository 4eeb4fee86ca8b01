"""The typed session record: the dose and weight history as columns (first dose, minimum interval, weight
change), and a read model of intake's safety flags.

Records written before this revision have another shape; none exists outside development, so rather than guess
at a conversion the upgrade stops if it finds one (nothing is changed silently).

Revision ID: sessions_0007
Revises: sessions_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "sessions_0007"
down_revision = "sessions_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    written = bind.execute(sa.text("SELECT record FROM dosing_session")).scalars().all()
    if any(record not in (None, {}, "{}") for record in written):
        raise RuntimeError(
            "dosing_session holds records in the shape before revision sessions_0007; convert them first "
            "(no conversion is shipped: no such record exists outside development)"
        )
    with op.batch_alter_table("dosing_session") as batch:
        batch.add_column(sa.Column("dose_route", sa.String(40)))
        batch.add_column(sa.Column("dosed_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("weight_kg", sa.Float))
        batch.add_column(sa.Column("weighed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_dosing_session_patient_dosed_at", "dosing_session", ["patient_id", "dosed_at"])
    op.create_table(
        "patient_safety_flag",
        sa.Column("flag_id", sa.Uuid, primary_key=True),
        sa.Column("patient_id", sa.Uuid, nullable=False, index=True),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("patient_safety_flag")
    op.drop_index("ix_dosing_session_patient_dosed_at", "dosing_session")
    with op.batch_alter_table("dosing_session") as batch:
        for column in ("weighed_at", "weight_kg", "dosed_at", "dose_route"):
            batch.drop_column(column)
