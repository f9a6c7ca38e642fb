"""The simulator's fixed, fake credentials (they open nothing but the simulator)."""

from __future__ import annotations

import base64

SIM_SINCH_INSTANCE_ID = "0a6b1c2d-3e4f-4a5b-8c6d-7e8f90a1b2c3"
SIM_SINCH_INSTANCE_SECRET = base64.b64encode(b"numbers-etl simulator instance!!").decode("ascii")
SIM_SINCH_EMAIL = "operator@example.com"
SIM_SINCH_PASSWORD = "sim-password-not-a-secret"  # noqa: S105
SIM_SINCH_ORGANISATION_ID = "8888123"
SIM_SINCH_ORGANISATION_NAME = "Numbers ETL Simulated Org"
SIM_PINGRAM_API_KEY = "pingram_sk_sim_4f2a9c1e7b3d58a06e9f1c2b"
SINCH_APPLICATION_KEY = "669762D5-2B10-44E0-8418-BC9EE4457555"  # Sinch's public number-admin key
