"""`python -m trainlab ...`: the `trainlab` command (trainlab/_launch.py)."""

import sys

from trainlab._launch import main

sys.exit(main())
