"""``python -m gateway`` is the ``saisine`` command."""

from gateway.cli import main

main()
