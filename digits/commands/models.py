"""`digits models`: every model version with its metrics, status and parent."""

from __future__ import annotations

import argparse
import json

from digits.settings import Settings


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per version")
    parser.add_argument("--runs", type=int, default=0, help="also list the last N training runs")


def _pct(value: object) -> str:
    return f"{100 * float(value):.2f}" if isinstance(value, int | float) else "-"


def run(args: argparse.Namespace, settings: Settings) -> int:
    import db

    with db.open_database(settings.db_url) as factory, db.session_scope(factory) as session:
        versions = [
            {
                "version": v.version,
                "status": str(v.status),
                "created": v.created_at.strftime("%Y-%m-%d %H:%M"),
                "parent": v.parent_version,
                "mnist_test_accuracy": v.metrics.get("mnist_test_accuracy"),
                "user_holdout_accuracy": v.metrics.get("user_holdout_accuracy"),
                "path": v.path,
                "notes": v.notes,
            }
            for v in db.list_model_versions(session)
        ]
        runs = [
            {
                "run": r.id,
                "started": r.started_at.strftime("%Y-%m-%d %H:%M"),
                "status": str(r.status),
                "model_version": r.model_version,
                "user_samples": r.user_samples,
                "note": (r.metrics or {}).get("reason") or r.error,
            }
            for r in (db.list_training_runs(session, limit=args.runs) if args.runs else [])
        ]
    if args.json:
        for row in versions + runs:
            print(json.dumps(row))
        return 0
    if not versions:
        print("no model versions yet (the first `digits retrain` registers the shipped model)")
    else:
        print(
            f"{'version':<34} {'status':<9} {'created':<16} {'MNIST %':>7} {'users %':>7}  parent"
        )
        for v in versions:
            marker = "*" if v["status"] == "active" else " "
            print(
                f"{marker}{v['version']:<33} {v['status']:<9} {v['created']:<16} "
                f"{_pct(v['mnist_test_accuracy']):>7} {_pct(v['user_holdout_accuracy']):>7}  "
                f"{v['parent'] or '-'}"
            )
    for r in runs:
        version = r["model_version"] or "-"
        print(f"run {r['run']:>4} {r['started']} {r['status']:<9} {version}  {r['note'] or ''}")
    return 0
