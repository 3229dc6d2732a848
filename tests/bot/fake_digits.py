"""A test double for ``digits retrain`` / ``digits export`` (used only where the real
command has not landed): behaves like the real one at the process boundary, i.e. the
arguments, the exit code, the final JSON summary line and the files written.

Environment: FAKE_DIGITS_SLEEP (seconds to run), FAKE_DIGITS_EXIT (exit code),
FAKE_DIGITS_LOG (a file that gets one line per run, to count runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def promote(path: Path) -> None:
    """Register and activate ``path`` in DATABASE_URL, as a promoting retrain does."""
    import db
    from db.images import sha256_hex

    engine = db.make_engine(os.environ["DATABASE_URL"])
    with db.make_session_factory(engine)() as session, session.begin():
        db.register_model_version(
            session,
            version=path.stem,
            path=str(path),
            sha256=sha256_hex(path.read_bytes()),
            parent_version=None,
            data_summary={"user_digits": 0},
            metrics={"mnist_accuracy": 0.99},
            status="active",
        )
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["retrain", "export"])
    parser.add_argument("--out")
    parser.add_argument("--format", default="npz")
    args, _rest = parser.parse_known_args()
    log = os.environ.get("FAKE_DIGITS_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{args.command} start {os.getpid()} {time.time()}\n")
    time.sleep(float(os.environ.get("FAKE_DIGITS_SLEEP", "0")))
    code = int(os.environ.get("FAKE_DIGITS_EXIT", "0"))
    if args.command == "export" and args.out and code == 0:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "digits.npz").write_bytes(b"PK\x05\x06" + bytes(18))
        (out / "manifest.json").write_text(json.dumps({"digits": 0}))
    activate = os.environ.get("FAKE_DIGITS_ACTIVATE")  # path of a model to promote
    if args.command == "retrain" and activate and code == 0:
        promote(Path(activate))
    print("working...")
    status = "promoted" if code == 0 else "failed"
    summary = {"status": status, "reason": f"fake {args.command}"}
    if activate and code == 0:
        summary["version"] = Path(activate).stem
    print(json.dumps(summary))
    if log:
        with open(log, "a") as handle:
            handle.write(f"{args.command} end {os.getpid()} {time.time()}\n")
    if code:
        print("fake failure", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
