"""`digits models activate VERSION`: roll back or forward by hand (the bot picks it up)."""

from __future__ import annotations

import argparse
import sys

from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", help="a version listed by `digits models`")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    import db
    from vision.checkpoint import CheckpointError
    from vision.classifier import DigitClassifier

    with db.open_database(settings.db_url) as factory, db.session_scope(factory) as session:
        try:
            target = db.get_model_version(session, args.version)
            path = Path(target.path)
            # Never activate a file the bot could not load.
            clf = DigitClassifier.load(path)
            if clf.sha256 != target.sha256:
                sys.stderr.write(
                    f"digits models activate: {path} does not match the sha256 registered "
                    f"for {args.version}; refusing to activate it\n"
                )
                return 1
            before = db.active_model_version(session)
            db.activate_model_version(session, args.version)
        except (db.ModelVersionNotFound, db.InvalidTransition, CheckpointError) as exc:
            sys.stderr.write(f"digits models activate: {exc}\n")
            return 1
    previous = before.version if before is not None else "none"
    print(f"active model: {args.version} (was {previous})")
    return 0
