"""``python -m nasengine`` -> ``nasengine.cli.main()``."""
import sys

from nasengine.cli import main

if __name__ == "__main__":
    sys.exit(main())
