"""Print the README's role matrix from dashboard/policy.py: `python scripts/role_table.py`."""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.config import load_settings  # noqa: E402
from dashboard.policy import role_table_markdown  # noqa: E402
from dashboard.server import create_server  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    print(role_table_markdown(create_server(load_settings({"DATA_DIR": tmp, "DEMO_DATA": "0"}))))
