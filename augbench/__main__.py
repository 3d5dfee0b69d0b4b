import sys

from augbench.cli import main

sys.exit(main())
