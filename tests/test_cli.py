"""The `digits` dispatcher: help, unknown commands, and lazy subcommand imports."""

import subprocess
import sys

from digits.cli import COMMANDS, main


def test_help_lists_every_command(capsys) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_an_error(capsys) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_every_command_module_has_the_contract() -> None:
    import importlib

    for name, (module_name, _) in COMMANDS.items():
        module = importlib.import_module(f"digits.commands.{module_name}")
        assert callable(module.register) and callable(module.run), name


def test_dispatcher_does_not_import_subcommands_eagerly() -> None:
    code = (
        "import sys, digits.cli; digits.cli.main(['--help']);"
        "heavy = [m for m in ('torch', 'cv2', 'telegram', 'sqlalchemy') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]")


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    """`digits read … | head -1`: the pipe closing is no error to print a traceback for."""
    code = (
        "import sys, digits.cli\n"
        "mod = type(sys)('fake')\n"
        "mod.register = lambda parser: None\n"
        "def run(args, settings):\n"
        "    while True:\n"
        "        print('x' * 100)\n"
        "mod.run = run\n"
        "sys.modules['digits.commands.fake'] = mod\n"
        "digits.cli.COMMANDS['fake'] = ('fake', 'prints forever')\n"
        "raise SystemExit(digits.cli.main(['fake']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader goes away
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err
