"""`crocodil` with a pipeline that fails on rank 1 only: the sharded-inference test checks the whole command fails
with that rank's one-line error instead of hanging (tests/test_sharded_inference.py)."""

import os
import sys

from crocodil_hf.cli import main
from crocodil_hf.pipelines.pipeline_crocodil import CrocodilPipeline

if os.environ.get("RANK") == "1":

    def fail(self, *args, **kwargs):
        raise ValueError("rank 1 could not sample")

    CrocodilPipeline.denoise = fail  # the sampling loop; checks and loading still run as on every rank

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
