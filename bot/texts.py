"""Every text a person sees from the bot, in one place (so wording is reviewed together).

Texts sent with ``parse_mode=HTML`` escape whatever comes from outside (``html.escape``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

MISSING_TOKEN = (
    "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather (https://t.me/BotFather), "
    "then export TELEGRAM_BOT_TOKEN=<the token it gives you>"
)

# --- commands (registered with Telegram via set_my_commands) -----------------------------

COMMANDS: tuple[tuple[str, str], ...] = (
    ("start", "What this bot does and how to use it"),
    ("help", "How to photograph numbers so they read well"),
    ("stats", "Your readings, corrections and the model's accuracy for you"),
    ("privacy", "What is stored about you and why"),
    ("forget", "Delete everything stored about you"),
)
ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("modelinfo", "Admin: the active model and its metrics"),
    ("retrain", "Admin: retrain the model on the collected corrections now"),
    ("export", "Admin: download the labelled dataset"),
)

HELP = (
    "<b>I read handwritten numbers.</b>\n"
    "Send me a photo of numbers written on paper and I answer with what I read: the "
    "picture with a box around every digit, and the number as text.\n\n"
    "Then tap <b>✅</b> if I got it right, or <b>✏️</b> and type the right number. "
    "Your answers teach the model: it is retrained on them regularly.\n\n"
    "<b>For a good reading</b>\n"
    "• dark pen on plain light paper, digits not touching each other\n"
    "• photograph straight from above, in good light, without shadows\n"
    "• fill the picture with the numbers; several lines are fine\n"
    "• scans work well: send them as a file (image or PDF) to keep full quality\n\n"
    "<b>What is stored</b>: your pictures, what I read, your answers and your Telegram "
    "user id, to measure and improve the model. /privacy has the details, /forget "
    "deletes it all, /stats shows how well I read your handwriting."
)

PRIVACY = (
    "<b>What I store and why</b>\n"
    "• your Telegram user id (to keep your readings apart from everyone else's)\n"
    "• the pictures you send and the digits cut out of them\n"
    "• what I read, and your confirmations and corrections\n\n"
    "They are used only to measure and improve the digit reader: corrected digits become "
    "training data for the next model. Exported datasets never contain your Telegram id.\n\n"
    "/forget deletes all of it, pictures included, at once and for good."
)

# --- readings --------------------------------------------------------------------------------

# The reading's number appears in captions and prompts so that a reply to either one can
# be matched to its reading by any bot instance (webhook deployments have several).
READING_TAG = "reading #{id}"
READING_TAG_RE = re.compile(r"reading #(\d+)")
LOW_MARK = "^"

BUTTON_CONFIRM = "✅ Correct"
BUTTON_FIX = "✏️ Fix"

NO_DIGITS = (
    "I could not find any digits in this picture. If there is a number, tap ✏️ and type "
    "it: that teaches me to find it next time. Otherwise try dark ink on plain light "
    "paper, photographed from straight above in good light, with the numbers filling the "
    "picture."
)
NO_DIGITS_PAGE = "No digits found on this page; if there is a number, tap ✏️ and type it."


def no_digits(reading_id: int, *, page: int | None = None, pages: int | None = None) -> str:
    """The reply to a picture (or a page) without digits; it names the reading, so that a
    reply to it corrects that reading too."""
    head = f"Page {page}/{pages} · " if page is not None and pages else ""
    body = NO_DIGITS_PAGE if page is not None else NO_DIGITS
    return f"{html.escape(head + READING_TAG.format(id=reading_id))}\n{html.escape(body)}"


def caption(
    reading_id: int,
    text: str,
    low: Sequence[bool],
    *,
    page: int | None = None,
    pages: int | None = None,
    limit: int = 1024,
) -> str:
    """The reply's caption (HTML): the reading in monospace, low-confidence digits marked.

    ``low`` has one flag per digit of ``text`` in reading order. Under each line that has
    a doubtful digit goes a line with ``^`` under it. Long readings are cut to fit
    Telegram's 1024-character caption limit.
    """
    flags = iter(low)
    lines: list[str] = []
    any_low = False
    for line in text.split("\n"):
        marks = "".join(
            (LOW_MARK if next(flags, False) else " ") if c.isdigit() else " " for c in line
        )
        lines.append(line)
        if LOW_MARK in marks:
            any_low = True
            lines.append(marks.rstrip())
    head = f"Page {page}/{pages} · " if page is not None and pages else ""
    head += READING_TAG.format(id=reading_id)
    tail = "^ = not sure about this digit. " if any_low else ""
    tail += "Tap ✅ if this is right, ✏️ to correct it."
    body = "\n".join(lines)
    # Visible length (tags do not count) must stay within the limit.
    room = limit - len(head) - len(tail) - 4
    if len(body) > room:
        body = body[: max(0, room - 1)] + "…"
    return f"{html.escape(head)}\n<pre>{html.escape(body)}</pre>\n{html.escape(tail)}"


CONFIRMED = "✅ Thanks, saved as correct."
CORRECTED = "✏️ Thanks, saved: {text}"
CORRECTED_REVIEW = (
    "✏️ Thanks, saved: {text} ({expected} digits, but I had found {found}, so it will be "
    "checked before training)."
)
FIX_PROMPT = "Type the right number for {tag} (digits; spaces and new lines as on paper)."
FIX_PLACEHOLDER = "e.g. 1234 5678"
NOT_YOUR_READING = "This reading belongs to someone else; only its sender can answer it."
READING_GONE = "This reading no longer exists."
STALE_BUTTON = "This button is no longer valid."
BAD_CORRECTION = "That is not a number: {reason}. Please type just the digits, e.g. 1234."
NOTHING_TO_CORRECT = (
    "Send me a photo of handwritten numbers and I will read it. "
    "To correct a reading, tap ✏️ under it first."
)


def corrected(text: str, labelled: bool, expected: int, found: int) -> str:
    shown = " / ".join(text.split("\n"))
    if labelled:
        return CORRECTED.format(text=shown)
    return CORRECTED_REVIEW.format(text=shown, expected=expected, found=found)


# --- bad input and limits --------------------------------------------------------------------

NOT_AN_IMAGE = "I can only read photos, image files and PDF scans; this file is {kind}."
TOO_BIG = (
    "This file is {size} MB; Telegram lets bots download at most 20 MB. Please send a smaller one."
)
STICKER = "Nice sticker! I read handwritten numbers, though: please send a photo of some."
VOICE = "I cannot listen, sorry: please send a photo of the handwritten numbers."
OTHER_MESSAGE = "I read handwritten numbers: please send a photo of some (or /help)."
UNKNOWN_COMMAND = "I do not know that command; /help lists what I can do."
RATE_LIMITED = (
    "You are sending pictures faster than I can take them (at most {limit} a minute). "
    "Please wait {wait} seconds and send it again."
)
ERROR = "Sorry, something went wrong on my side; please try again in a moment."

# --- /stats, /forget ----------------------------------------------------------------------------

STATS_NONE = "You have not sent me any numbers yet. Send a photo to start!"


def stats(
    readings: int,
    confirmed: int,
    corrected: int,
    pending: int,
    labelled: int,
    correct: int,
) -> str:
    lines = [
        "<b>Your numbers</b>",
        f"Readings: {readings} ({confirmed} confirmed, {corrected} corrected, "
        f"{pending} not answered yet)",
    ]
    if labelled:
        lines.append(
            f"Model accuracy on your handwriting: {100.0 * correct / labelled:.1f} % "
            f"({correct} of {labelled} checked digits)"
        )
    else:
        lines.append("Accuracy: confirm or correct a reading and I can tell you.")
    return "\n".join(lines)


FORGET_ASK = (
    "This deletes everything stored about you: your pictures, readings and corrections. "
    "It cannot be undone. Delete?"
)
BUTTON_FORGET_YES = "🗑 Delete everything"
BUTTON_FORGET_NO = "Cancel"
FORGET_DONE = (
    "Done: deleted {readings} readings and {images} pictures. Nothing about you is stored now."
)
FORGET_NOTHING = "There is nothing stored about you."
FORGET_CANCELLED = "Cancelled; nothing was deleted."

# --- admin ---------------------------------------------------------------------------------------

ADMIN_ONLY = "Sorry, this command is for the bot's administrators."
NO_ACTIVE_MODEL = "No model version is active in the database; using the shipped default model."


def model_info(loaded: str, path: str, active: str | None, metrics: dict | None) -> str:
    lines = [f"<b>Loaded model</b>: <code>{html.escape(loaded)}</code>"]
    lines.append(f"File: <code>{html.escape(path)}</code>")
    if active is None:
        lines.append(NO_ACTIVE_MODEL)
    else:
        lines.append(f"Active in database: <code>{html.escape(active)}</code>")
    for key, value in sorted((metrics or {}).items()):
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"• {html.escape(str(key))}: {html.escape(shown)}")
    return "\n".join(lines)


RETRAIN_STARTED = "Retraining started; I will report when it is done."
RETRAIN_BUSY = "A retraining is already running; I will report when it is done."
RETRAIN_DONE = "Retraining finished: {summary}"
RETRAIN_LOCKED = "Not started: another retraining is running (cron or another bot instance)."
RETRAIN_FAILED = "Retraining failed (exit code {code}): {summary}"
RETRAIN_SCHEDULED = "Scheduled retraining finished: {summary}"
MODEL_SWAPPED = "Now reading with model {version}."
EXPORT_STARTED = "Exporting the dataset…"
EXPORT_BUSY = "An export is already running."
EXPORT_FAILED = "Export failed (exit code {code}): {summary}"
EXPORT_TOO_BIG = (
    "The export is {size} MB, over Telegram's 50 MB upload limit; it is at {path} on the server."
)
EXPORT_CAPTION = "Labelled dataset ({size} KB)."
