import sys

from wmlib.cli import main

sys.exit(main())
