"""`python -m denoiser.cli ...`: the same as the `denoiser` command."""

import sys

from denoiser.cli import main

if __name__ == "__main__":
    sys.exit(main())
