"""``python -m algm_export.bench`` = ``algm-export bench``."""

import sys

from .command import main

sys.exit(main())
