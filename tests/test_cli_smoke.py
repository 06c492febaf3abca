import subprocess
import sys

from omnisync_core.cli import build_parser


def test_every_command_has_help():
    parser = build_parser()
    actions = [a for a in parser._actions if a.dest == "command"]
    assert actions, "omnisync has no sub-commands"
    for name, sub in actions[0].choices.items():
        assert sub.format_help().strip(), name


def test_module_entry_point_prints_help():
    out = subprocess.run([sys.executable, "-m", "omnisync_core", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "run" in out.stdout
