import sys

from tinct.cli.main import main

sys.exit(main())
