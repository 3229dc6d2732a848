"""`digits db ACTION`: migrate and inspect the database (settings.db_url)."""

from __future__ import annotations

import argparse
import logging
import sys

from sqlalchemy.engine import make_url

from digits.settings import Settings

log = logging.getLogger(__name__)


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = sub.add_parser("upgrade", help="run the migrations (to the newest schema by default)")
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    sub.add_parser("current", help="show the database's revision; exit 1 if not the newest")
    sub.add_parser("check", help="alembic check: the models agree with the migrations")
    sub.add_parser("url", help="show the database URL in use (password hidden)")
    gc = sub.add_parser(
        "gc",
        help="remove leftovers of killed processes: temp files, unregistered models, "
        "images no reading refers to",
    )
    gc.add_argument(
        "--min-age-s",
        type=float,
        default=3600.0,
        help="leave younger files alone (a live writer may not have committed yet)",
    )
    down = sub.add_parser("downgrade", help="migrate down (drops tables/columns and their data)")
    down.add_argument("revision", help="target revision, e.g. 'base' for an empty database")
    down.add_argument(
        "--yes-delete-data",
        action="store_true",
        help="required: downgrading deletes the data the dropped tables and columns hold",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    # A broken or unreachable database is reported by the dispatcher, in one line.
    if args.action == "gc":
        return _gc(args, settings)
    return _run(args, settings.db_url)


def _gc(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from db import migrations
    from db.gc import collect_garbage
    from db.images import ImageStore

    migrations.check_current(settings.db_url)
    with migrations.open_database(settings.db_url, migrate=False) as factory:
        report = collect_garbage(
            factory,
            images=ImageStore(settings.images_dir),
            models_dir=settings.models_dir,
            min_age_s=max(0.0, args.min_age_s),
        )
    sys.stdout.write(json.dumps(report.to_dict()) + "\n")
    return 0


def _run(args: argparse.Namespace, url: str) -> int:
    from db import migrations

    shown = make_url(url).render_as_string(hide_password=True)
    out = sys.stdout.write
    if args.action == "url":
        out(f"{shown}\n")
        return 0
    if args.action == "upgrade":
        revision = migrations.upgrade(url, args.revision)
        out(f"{shown}: at revision {revision}\n")
        return 0
    if args.action == "current":
        current, head = migrations.current_revision(url), migrations.head_revision()
        state = "up to date" if current == head else "behind: run `digits db upgrade`"
        out(f"{shown}: revision {current or 'none (empty)'}, newest {head} ({state})\n")
        return 0 if current == head else 1
    if args.action == "check":
        migrations.check_current(url)
        migrations.check_models(url)
        out("models and migrations agree\n")
        return 0
    if args.action == "downgrade":
        if not args.yes_delete_data:
            sys.stderr.write(
                "digits db downgrade deletes data; pass --yes-delete-data if that is intended\n"
            )
            return 2
        revision = migrations.downgrade(url, args.revision)
        out(f"{shown}: at revision {revision or 'base (empty)'}\n")
        return 0
    raise AssertionError(args.action)
