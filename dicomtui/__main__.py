import sys

from .cli import main

if __name__ == "__main__":  # the importer's forkserver imports the main module: it must not start the app again
    sys.exit(main())
