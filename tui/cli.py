"""The `perpdesk` command line: parses arguments and dispatches to a subcommand or the console."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from engine.config import ConfigError, find_config_file, load_settings, settings_as_toml

# Textual is imported only by the handler that starts the console, so `perpdesk config` and
# the other batch commands start fast and work on a box without a usable terminal.

PROG = "perpdesk"

Handler = Callable[[argparse.Namespace], int]


def _run_console(args: argparse.Namespace) -> int:
    print(f"{PROG}: the console is not built yet; try '{PROG} config'", file=sys.stderr)
    return 1


def _run_config(args: argparse.Namespace) -> int:
    path: Path | None = args.config
    settings = load_settings(path)
    source = find_config_file(path)
    file_note = str(source) if source is not None else "no config file"
    print(f"# effective settings: defaults < {file_note} < {PROG.upper()}_* environment")
    print(settings_as_toml(settings), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser: global options, one subparser per command; no command starts the console."""
    # --config is accepted before or after the command (`perpdesk config --config x.toml`).
    # SUPPRESS keeps a subparser's unset --config from overwriting the global one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="settings file (TOML); default ./perpdesk.toml if it exists",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="A terminal console for market making on perpetual futures.",
        epilog="Settings: defaults < TOML file < PERPDESK_SECTION__KEY environment variables.",
    )
    parser.set_defaults(handler=_run_console)
    commands = parser.add_subparsers(
        title="commands", metavar="[COMMAND]", description="with no command, start the console"
    )

    config = commands.add_parser(
        "config",
        parents=[common],
        help="print the effective settings as TOML (secrets masked)",
        description="Print the effective settings as TOML; secrets are never shown.",
    )
    config.set_defaults(handler=_run_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run perpdesk; returns the exit status (0 ok, 1 not available, 2 bad usage or settings)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and on usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    if not hasattr(args, "config"):
        args.config = None
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as err:
        for problem in err.problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
