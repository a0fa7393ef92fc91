import sys

from swnn.cli import main

sys.exit(main())
