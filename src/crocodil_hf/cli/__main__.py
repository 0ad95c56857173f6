"""`python -m crocodil_hf.cli ...` (e.g. under `torchrun` / `accelerate launch`), the same as `crocodil ...`."""

import sys

from . import main

sys.exit(main())
