"""The exchange service's own tables (SQLAlchemy Core); migration 0016_exchange creates them.

No table holds a balance: money lives in the ledger. These tables record what the
exchange decided and in which order, so that a restart rebuilds every book and resumes
settlement with the same ledger idempotency keys:

* `exchange_commands` — the per-market command log. A command is acknowledged only once
  its row is committed, with the book's sequence number and state hash after it.
  Replaying a market's rows in `seq` order rebuilds its book exactly.
* `exchange_orders` — one row per order: what was asked, and what the book did with it
  (open size, filled size and quote, fees, why it is done). `status = 'new'` is an
  order whose hold is being placed and whose command is not logged yet (an intent);
  a restart voids its hold and deletes it, since nobody was told it exists.
* `exchange_fills` — every trade, numbered per market (`fill_no`), with both fees.
* `exchange_order_marks` — for every order a logged command touched: what the order may
  still spend afterwards (`need_after_minor`) and whether it is done. Settlement reads
  them to size the re-hold (or release it) of each order it settles.
* `exchange_holds` — the ledger pending transfers that reserve an order's funds.
  `reserving` rows are intents (the ledger call may or may not have happened).
* `exchange_settlement_batches` — each settlement batch, planned in full (`plan`: the
  ledger items, by our own hold ids) before it is posted under the key
  `exchange:settle:<id>`, so a re-post after a crash is the same request.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from pacioli.ledger.storage.tables import MinorUnits

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

COMMAND_KINDS = ("place", "cancel", "cancel_all", "amend", "advance_clock")

exchange_commands = Table(
    "exchange_commands",
    metadata,
    Column("market", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True),  # 1, 2, 3 ... per market, no gaps
    Column("kind", Text, nullable=False),
    Column("command", JSONB, nullable=False),  # the book command's fields (codec.py)
    Column("ts", BigInteger, nullable=False),  # the command's clock, µs since the epoch
    Column("book_sequence", BigInteger, nullable=False),  # book.sequence after the command
    # book.state_hash() after the command: O(orders) to compute, so written when the book
    # is small or every HASH_EVERY commands (service.py); replay checks each one it meets.
    Column("state_hash", Text),
    Column("fill_no_last", BigInteger, nullable=False),  # the market's last fill_no after it
    Column("user_id", Uuid),  # who sent it (none for the clock)
    Column("idempotency_key", Text),
    Column("request_hash", Text),
    Column("result", JSONB, nullable=False),  # order ids the command answered with
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"kind IN {COMMAND_KINDS}", name="kind"),
    CheckConstraint("seq > 0", name="seq_positive"),
)
Index(
    "ux_exchange_commands_user_key", exchange_commands.c.user_id,
    exchange_commands.c.idempotency_key, unique=True,
    postgresql_where=exchange_commands.c.idempotency_key.isnot(None),
)

ORDER_STATUSES = ("new", "open", "done")

exchange_orders = Table(
    "exchange_orders",
    metadata,
    Column("id", Uuid, primary_key=True),  # public id (UUIDv7)
    Column("market", Text, nullable=False),
    Column("order_id", BigInteger, nullable=False),  # the book's id: 1, 2, 3 ... per market
    Column("user_id", Uuid, nullable=False),
    Column("side", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("time_in_force", Text, nullable=False),
    Column("post_only", Boolean, nullable=False),
    Column("stp", Text, nullable=False),
    Column("price", MinorUnits),  # quote minor units per whole base unit
    Column("size", MinorUnits),  # base minor units
    Column("funds", MinorUnits),  # quote minor units the user offered, fees included
    Column("stop_price", MinorUnits),
    Column("expires_at", DateTime(timezone=True)),
    Column("status", Text, nullable=False),
    Column("done_reason", Text),
    Column("open_size", MinorUnits, nullable=False, server_default=text("0")),
    Column("filled_size", MinorUnits, nullable=False, server_default=text("0")),
    Column("filled_quote", MinorUnits, nullable=False, server_default=text("0")),
    Column("fee", MinorUnits, nullable=False, server_default=text("0")),
    Column("hold_asset", Text, nullable=False),
    Column("placed_seq", BigInteger),  # the command that placed it, once logged
    Column("idempotency_key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("market", "order_id"),
    UniqueConstraint("user_id", "idempotency_key"),
    CheckConstraint(f"status IN {ORDER_STATUSES}", name="status"),
    CheckConstraint("(status = 'done') = (done_reason IS NOT NULL)", name="done_reason"),
)
Index("ix_exchange_orders_user_id", exchange_orders.c.user_id, exchange_orders.c.id)

exchange_fills = Table(
    "exchange_fills",
    metadata,
    Column("id", Uuid, primary_key=True),  # UUIDv7: lists page by it
    Column("market", Text, nullable=False),
    Column("fill_no", BigInteger, nullable=False),  # 1, 2, 3 ... per market, no gaps
    Column("command_seq", BigInteger, nullable=False),
    Column("price", MinorUnits, nullable=False),
    Column("size", MinorUnits, nullable=False),
    Column("quote_amount", MinorUnits, nullable=False),
    Column("taker_order", Uuid, nullable=False),
    Column("maker_order", Uuid, nullable=False),
    Column("taker_user_id", Uuid, nullable=False),
    Column("maker_user_id", Uuid, nullable=False),
    Column("taker_side", Text, nullable=False),
    Column("taker_fee", MinorUnits, nullable=False),
    Column("maker_fee", MinorUnits, nullable=False),
    # Of the buyer's quote amount + fee, what the platform pays (rounding beyond its hold).
    Column("buyer_rounding", MinorUnits, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False),  # the command's ts
    Column("batch_id", Uuid),  # the settlement batch that settles it, once planned
    UniqueConstraint("market", "fill_no"),
    CheckConstraint("size > 0 AND quote_amount > 0", name="positive"),
)
Index("ix_exchange_fills_taker_user_id", exchange_fills.c.taker_user_id, exchange_fills.c.id)
Index("ix_exchange_fills_maker_user_id", exchange_fills.c.maker_user_id, exchange_fills.c.id)

exchange_order_marks = Table(
    "exchange_order_marks",
    metadata,
    Column("market", Text, primary_key=True),
    Column("command_seq", BigInteger, primary_key=True),
    Column("order", Uuid, primary_key=True),
    Column("need_after", MinorUnits, nullable=False),  # what it may still spend
    Column("done", Boolean, nullable=False),
)

HOLD_STATUSES = ("reserving", "open", "resolved")

exchange_holds = Table(
    "exchange_holds",
    metadata,
    Column("id", Uuid, primary_key=True),  # ledger key exchange:hold:<id>
    Column("order", Uuid, nullable=False),
    Column("market", Text, nullable=False),
    Column("asset", Text, nullable=False),
    Column("amount", MinorUnits, nullable=False),
    Column("wallet_account_id", Uuid, nullable=False),
    Column("clearing_account_id", Uuid, nullable=False),
    Column("created_seq", BigInteger, nullable=False),  # the command (or batch end) it covers
    Column("created_by_batch", Uuid),  # a re-hold: the batch that made it
    Column("transfer_id", Uuid, unique=True),  # the ledger's pending transfer, once known
    Column("status", Text, nullable=False),
    Column("resolved_by_batch", Uuid),
    CheckConstraint(f"status IN {HOLD_STATUSES}", name="status"),
    CheckConstraint("amount > 0", name="amount_positive"),
)
Index(
    "ix_exchange_holds_unresolved", exchange_holds.c.order,
    postgresql_where=exchange_holds.c.status != "resolved",
)

BATCH_STATUSES = ("planned", "posted")

exchange_settlement_batches = Table(
    "exchange_settlement_batches",
    metadata,
    Column("id", Uuid, primary_key=True),  # ledger key exchange:settle:<id>
    Column("market", Text, nullable=False),
    Column("number", BigInteger, nullable=False),  # 1, 2, 3 ... per market
    Column("first_fill_no", BigInteger, nullable=False),
    Column("last_fill_no", BigInteger, nullable=False),  # first - 1 when it settles no fill
    Column("marks_through_seq", BigInteger, nullable=False),  # marks of commands <= it
    Column("holds_through_seq", BigInteger, nullable=False),  # holds it resolves are <= it
    Column("fill_count", Integer, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("plan", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("posted_at", DateTime(timezone=True)),
    UniqueConstraint("market", "number"),
    CheckConstraint(f"status IN {BATCH_STATUSES}", name="status"),
)
