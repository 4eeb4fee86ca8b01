"""Site role: the release rules (shared/privacy/release.py). Each cohort keeps what was last released of it, so
the next release can hold a shown figure until it has moved by 11 or more; each release is recorded with the
period boundary it was made for, so a site releases once per period; and a site in the differential-privacy mode
keeps what each month's releases spent of its ε.

Revision ID: outcomes_site_0004
Revises: outcomes_site_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "outcomes_site_0004"
down_revision = "outcomes_site_0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Rows published before the rules have no released figures: their next release is taken as it comes.
    op.add_column("published_aggregate", sa.Column("released", sa.JSON))
    op.create_table(
        "site_release",
        sa.Column("released_for", TZ, primary_key=True),
        sa.Column("released_at", TZ, nullable=False),
        sa.Column("cohorts_published", sa.Integer, nullable=False),
        sa.Column("groups_refused", sa.Integer, nullable=False),
    )
    # Every version released: complementary suppression is solved against all a reader could have kept.
    op.create_table(
        "released_version",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cohort", sa.String(200), nullable=False, index=True),
        sa.Column("released_for", TZ, nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
    )
    # The differential-privacy mode's accountant: what each month's releases spent of its ε.
    op.create_table(
        "privacy_budget",
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("budget", sa.String(40), nullable=False),
        sa.Column("spends", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("privacy_budget")
    op.drop_table("released_version")
    op.drop_table("site_release")
    with op.batch_alter_table("published_aggregate") as batch:
        batch.drop_column("released")
