"""Inline keyboards and their callback_data (kept well within Telegram's 64 bytes)."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts

CONFIRM = "c"
FIX = "f"
FORGET_YES = "xy"
FORGET_NO = "xn"
MAX_CALLBACK_DATA = 64


@dataclass(frozen=True)
class Callback:
    action: str
    target: int  # a reading id, or for /forget the Telegram id of who asked


def encode(action: str, target: int) -> str:
    data = f"{action}:{target}"
    if len(data.encode()) > MAX_CALLBACK_DATA:  # pragma: no cover - ids are ints
        raise ValueError(f"callback_data over {MAX_CALLBACK_DATA} bytes: {data!r}")
    return data


def decode(data: str | None) -> Callback | None:
    """The parsed callback, or None for anything this bot did not make."""
    if not data or len(data) > MAX_CALLBACK_DATA:
        return None
    action, _, target = data.partition(":")
    if action not in {CONFIRM, FIX, FORGET_YES, FORGET_NO} or not target.isdigit():
        return None
    return Callback(action, int(target))


def reading_keyboard(reading_id: int) -> InlineKeyboardMarkup:
    """Exactly two buttons: first confirm, second fix."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    texts.BUTTON_CONFIRM, callback_data=encode(CONFIRM, reading_id)
                ),
                InlineKeyboardButton(texts.BUTTON_FIX, callback_data=encode(FIX, reading_id)),
            ]
        ]
    )


def fix_keyboard(reading_id: int) -> InlineKeyboardMarkup:
    """Only ✏️: a picture in which nothing was found can still be answered."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(texts.BUTTON_FIX, callback_data=encode(FIX, reading_id))]]
    )


def forget_keyboard(telegram_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    texts.BUTTON_FORGET_YES, callback_data=encode(FORGET_YES, telegram_id)
                ),
                InlineKeyboardButton(
                    texts.BUTTON_FORGET_NO, callback_data=encode(FORGET_NO, telegram_id)
                ),
            ]
        ]
    )
