"""``python -m algm_export`` = the ``algm-export`` command."""

import sys

from .cli import main

sys.exit(main())
