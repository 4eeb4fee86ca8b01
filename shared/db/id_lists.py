"""IN lists bound when a statement runs, not when it is built.

``column.in_(values)`` turns each value into a bound parameter of its own while the statement is built, then
folds them back into one expanding parameter. With a consumer batch's hundreds of ids that building cost more
than the query: 12 % of billing's consumer (py-spy, bench/billing_consumer.py). ``one_of(column)`` is that same
expanding parameter from the start, so a statement using it can be built once, at import, and each call binds
its list (``params={IDS: [...]}``). The SQL sent is the same: one placeholder a value, rendered per execution.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

IDS = "ids"


def one_of(column: Any, name: str = IDS) -> ColumnElement[bool]:
    """``column IN (:name)``, the list given when the statement runs; it takes the column's type (a UUID column
    binds UUIDs as the dialect stores them)."""
    return col(column).in_(sa.bindparam(name, expanding=True))
