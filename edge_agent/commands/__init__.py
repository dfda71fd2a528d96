"""The `edge-agent` subcommands, one module (or package) each, apart from the core stages.

Every command module has `SUMMARY` (its line in `edge-agent --help`), `add_arguments(parser)`
and `run(args) -> int`, and may set `DESCRIPTION` (shown by `edge-agent COMMAND --help`).
`edge_agent/cli.py` is the table of them. Commands are wiring: they may read the config and
use any stage; heavy imports (OpenCV, LiteRT) wait until `run()`.
"""
