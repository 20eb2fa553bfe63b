"""`python -m postwire_service ...` runs the `postwire` command."""

import sys

from postwire_service.cli import main

sys.exit(main())
