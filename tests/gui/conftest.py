"""GUI tests run headless: Qt's offscreen platform, set before Qt is imported."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
