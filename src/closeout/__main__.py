"""The `closeout` console script: Django's manage.py with closeout's own commands."""

import os
import sys

# Commands users type with a hyphen; Django command modules need an identifier.
_ALIASES = {"gen-data": "gen_data", "post-event": "post_event"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closeout.settings")
    from django.core.management import execute_from_command_line

    argv = list(sys.argv)
    if len(argv) > 1 and argv[1] in _ALIASES:
        argv[1] = _ALIASES[argv[1]]
    argv[0] = "closeout"
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
