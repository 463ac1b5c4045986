import sys

from actorium.cli import main

sys.exit(main())
