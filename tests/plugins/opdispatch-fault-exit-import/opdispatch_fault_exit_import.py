"""Fault: calls sys.exit() at import, as a misbehaving script turned plugin would."""

import sys

sys.exit("opdispatch-fault-exit-import: giving up at import")
