"""`python -m hwgen ...` runs the command-line tool (the same as the `hwgen` script)."""
from hwgen.cli import main

if __name__ == "__main__":
    main()
