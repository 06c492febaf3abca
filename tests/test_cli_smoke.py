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


def test_help_does_not_wait_for_torch():
    """Every sub-command's help is built without importing torch (2 s of a 2.5 s `omnisync --help`)."""
    code = ("import sys; from omnisync_core.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
