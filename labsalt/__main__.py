import sys

from labsalt.cli import main

sys.exit(main())
