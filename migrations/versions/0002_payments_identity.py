"""payments identity: users, sessions, TOTP, merchants, merchant keys, settlement accounts

Also `api_idempotency`, the Idempotency-Key store of the API's non-ledger writes (signup,
merchant registration ...). Secrets (session tokens, merchant keys) are stored only as
SHA-256 digests; passwords as argon2id hashes. TOTP secrets are stored as they are
(encryption at rest is out of scope; see docs/users.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 18:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps(*names: str, nullable: bool = False) -> list[sa.Column]:
    return [sa.Column(name, sa.DateTime(timezone=True), nullable=nullable) for name in names]


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('email', sa.Text(), nullable=True),
        sa.Column('phone', sa.Text(), nullable=True),
        sa.Column('display_name', sa.Text(), nullable=True),
        sa.Column('password_hash', sa.Text(), nullable=False),
        *_timestamps('created_at'),
        sa.CheckConstraint('email IS NOT NULL OR phone IS NOT NULL', name='ck_users_contact'),
        sa.CheckConstraint('email = lower(email)', name='ck_users_email_lower_case'),
        sa.UniqueConstraint('email', name='uq_users_email'),
        sa.UniqueConstraint('phone', name='uq_users_phone'),
    )
    op.create_table(
        'user_sessions',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('user_id', sa.Uuid(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('token_hash', sa.LargeBinary(), nullable=False),
        *_timestamps('created_at', 'expires_at'),
        *_timestamps('revoked_at', nullable=True),
        sa.UniqueConstraint('token_hash', name='uq_user_sessions_token_hash'),
    )
    op.create_index('ix_user_sessions_user_id', 'user_sessions', ['user_id'])
    op.create_table(
        'user_totp',
        sa.Column('user_id', sa.Uuid(), sa.ForeignKey('users.id'), primary_key=True),
        sa.Column('secret', sa.Text(), nullable=False),
        # The time step of the last code accepted: a code is never accepted twice.
        sa.Column('last_used_step', sa.BigInteger(), nullable=True),
        *_timestamps('created_at'),
        *_timestamps('confirmed_at', nullable=True),
    )
    op.create_table(
        'merchants',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('name', sa.Text(), nullable=False),
        sa.Column('owner_user_id', sa.Uuid(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('status', sa.Text(), nullable=False),
        *_timestamps('created_at'),
        *_timestamps('reviewed_at', nullable=True),
        sa.CheckConstraint(
            "status IN ('pending_review', 'approved', 'rejected')", name='ck_merchants_status'
        ),
    )
    op.create_index('ix_merchants_owner_user_id', 'merchants', ['owner_user_id'])
    op.create_table(
        'merchant_api_keys',
        sa.Column('id', sa.Uuid(), primary_key=True),
        sa.Column('merchant_id', sa.Uuid(), sa.ForeignKey('merchants.id'), nullable=False),
        sa.Column('mode', sa.Text(), nullable=False),
        sa.Column('key_hash', sa.LargeBinary(), nullable=False),
        sa.Column('last4', sa.Text(), nullable=False),
        *_timestamps('created_at'),
        *_timestamps('expires_at', 'revoked_at', nullable=True),
        sa.CheckConstraint("mode IN ('live', 'test')", name='ck_merchant_api_keys_mode'),
        sa.UniqueConstraint('key_hash', name='uq_merchant_api_keys_key_hash'),
    )
    op.create_index('ix_merchant_api_keys_merchant_id', 'merchant_api_keys', ['merchant_id'])
    op.create_table(
        'merchant_settlement_accounts',
        sa.Column('merchant_id', sa.Uuid(), sa.ForeignKey('merchants.id'), primary_key=True),
        sa.Column('account_holder', sa.Text(), nullable=False),
        sa.Column('iban', sa.Text(), nullable=True),
        sa.Column('account_number', sa.Text(), nullable=True),
        sa.Column('routing_number', sa.Text(), nullable=True),
        *_timestamps('created_at', 'updated_at'),
        sa.CheckConstraint(
            '(iban IS NOT NULL) <> (account_number IS NOT NULL AND routing_number IS NOT NULL)',
            name='ck_merchant_settlement_accounts_one_scheme',
        ),
    )
    op.create_table(
        'api_idempotency',
        sa.Column('principal', sa.Text(), nullable=False),
        sa.Column('key', sa.Text(), nullable=False),
        sa.Column('operation', sa.Text(), nullable=False),
        sa.Column('request_hash', sa.LargeBinary(), nullable=False),
        sa.Column('result_refs', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        *_timestamps('created_at'),
        sa.PrimaryKeyConstraint('principal', 'key', name='pk_api_idempotency'),
    )


def downgrade() -> None:
    op.drop_table('api_idempotency')
    op.drop_table('merchant_settlement_accounts')
    op.drop_index('ix_merchant_api_keys_merchant_id', table_name='merchant_api_keys')
    op.drop_table('merchant_api_keys')
    op.drop_index('ix_merchants_owner_user_id', table_name='merchants')
    op.drop_table('merchants')
    op.drop_table('user_totp')
    op.drop_index('ix_user_sessions_user_id', table_name='user_sessions')
    op.drop_table('user_sessions')
    op.drop_table('users')
