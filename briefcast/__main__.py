"""The ``briefcast`` command (and ``python -m briefcast``)."""

import sys


def main() -> None:
    from briefcast import embedded_prefect

    embedded_prefect.start_for_command(sys.argv[1:])  # before the CLI's second of imports
    from briefcast.cli import app

    app()


if __name__ == "__main__":
    main()
