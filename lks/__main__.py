import sys

from lks.cli.main import main

sys.exit(main())
