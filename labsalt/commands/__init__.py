"""Plug-in subcommands: each module defines register(subparsers)."""
