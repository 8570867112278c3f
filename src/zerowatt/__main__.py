"""``python -m zerowatt`` runs the CLI (used by tests to run the working tree's code)."""

from zerowatt.cli.main import main

if __name__ == "__main__":
    main()
