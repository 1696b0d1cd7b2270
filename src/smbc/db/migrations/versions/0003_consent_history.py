"""consent: the consent history (one row per consent change, the e-mail as its keyed hash)

Revision ID: 0003_consent_history
Revises: 0002_consent
"""

from alembic import op
import sqlalchemy as sa
import smbc.db.types  # noqa: F401


revision = '0003_consent_history'
down_revision = '0002_consent'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.Column('email_hash', sa.String(length=80), nullable=False),
    sa.Column('source', sa.String(length=24), nullable=False),
    sa.Column('change', sa.String(length=32), nullable=False),
    sa.Column('sent', sa.String(length=500), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('at', smbc.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_consent_history_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_history'))
    )
    with op.batch_alter_table('consent_history', schema=None) as batch_op:
        batch_op.create_index('ix_consent_history_store_email', ['store_id', 'email_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consent_history', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_history_store_email')

    op.drop_table('consent_history')
