"""Users' source (bot or web) and the dashboard's queries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from db import (
    InvalidInput,
    UserSource,
    confirm_reading,
    correct_reading,
    get_or_create_user,
    record_reading,
)
from db.dashboard import confused_pairs, confusion, daily_accuracy, source_counts


def test_a_user_keeps_the_source_they_came_from(session: Session) -> None:
    web = get_or_create_user(session, -77, source="web")
    bot = get_or_create_user(session, 77)
    assert web.source == UserSource.WEB and bot.source == UserSource.BOT
    again = get_or_create_user(session, -77, source="bot")  # seen again: unchanged
    assert again.source == UserSource.WEB
    with pytest.raises(InvalidInput, match="user source"):
        get_or_create_user(session, 78, source="fax")


def test_counts_accuracy_and_confusions(session: Session, reading_kwargs) -> None:
    day1 = datetime(2026, 12, 1, 12, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    a = record_reading(session, **reading_kwargs(1, "123", model_version="v1"))
    b = record_reading(session, **reading_kwargs(1, "45", model_version="v1"))
    c = record_reading(session, **reading_kwargs(-5, "67", model_version="v2", source="web"))
    d = record_reading(session, **reading_kwargs(-5, "8", model_version="v2", source="web"))
    record_reading(session, **reading_kwargs(-6, "9", source="web"))  # never answered
    confirm_reading(session, a.id, 1, now=day1)
    correct_reading(session, b.id, 1, "43", now=day1)  # 5 read for a 3
    correct_reading(session, c.id, -5, "17", now=day2)  # 6 read for a 1
    correct_reading(session, d.id, -5, "8", now=day2)  # typed what was read: exact

    counts = {s.source: s for s in source_counts(session)}
    assert (counts["bot"].users, counts["bot"].readings) == (1, 2)
    assert (counts["bot"].confirmed, counts["bot"].corrections) == (1, 1)
    assert (counts["web"].users, counts["web"].readings) == (2, 3)
    assert (counts["web"].confirmed, counts["web"].corrections) == (0, 2)

    rows = [(r.day, r.model_version, r.answered, r.exact) for r in daily_accuracy(session)]
    assert rows == [(day1.date(), "v1", 2, 1), (day2.date(), "v2", 2, 1)]
    first = daily_accuracy(session)[0]
    assert (first.digits_labelled, first.digits_correct) == (5, 4)
    assert daily_accuracy(session, since=day2) == daily_accuracy(session)[1:]

    matrix = confusion(session)
    assert matrix[3][5] == 1 and matrix[1][6] == 1 and matrix[1][1] == 1
    assert sum(map(sum, matrix)) == 8  # every labelled digit once (3 + 2 + 2 + 1)
    assert confused_pairs(matrix) == [(1, 6, 1), (3, 5, 1)]
