"""A realistic, deterministic simulator of the Sinch and Pingram APIs, on one loopback port.

Used by ``numbers-etl demo``, ``numbers-etl simulate``, the tests and the benchmark::

    sim = serve(numbers=1000, seed=1)           # started, in a daemon thread
    os.environ.update(sim.env())                # or sim.login_env() for the log-in flow
    sim.faults.add("sinch.numbers", Fault(status=503), Fault(status=503))
    sim.set_dataset(revision=1)                 # changed_count(1000, 1, 1) == 10 records
    sim.stop()

Endpoints: ``sinch.login`` (POST /v1/users/email/{email}/authentication), ``sinch.instance``
(POST /v1/instance), ``sinch.organisations`` (GET /v1/organisations), ``sinch.numbers``
(GET /v1/organisations/id/{orgId}/numbers), ``pingram.list`` (GET /numbers/list).
The dataset is described in `etl.simulator.data`, the fault knobs in `etl.simulator.faults`.
"""

from etl.simulator.credentials import (
    SIM_PINGRAM_API_KEY,
    SIM_SINCH_EMAIL,
    SIM_SINCH_INSTANCE_ID,
    SIM_SINCH_INSTANCE_SECRET,
    SIM_SINCH_ORGANISATION_ID,
    SIM_SINCH_PASSWORD,
)
from etl.simulator.data import MAX_NUMBERS, changed_count, changed_indices
from etl.simulator.faults import ENDPOINTS, ORGANISATIONS_SHAPES, Fault, Faults, parse_fault
from etl.simulator.simulator import Dataset, RequestRecord, Simulator, serve

__all__ = [
    "ENDPOINTS",
    "MAX_NUMBERS",
    "ORGANISATIONS_SHAPES",
    "SIM_PINGRAM_API_KEY",
    "SIM_SINCH_EMAIL",
    "SIM_SINCH_INSTANCE_ID",
    "SIM_SINCH_INSTANCE_SECRET",
    "SIM_SINCH_ORGANISATION_ID",
    "SIM_SINCH_PASSWORD",
    "Dataset",
    "Fault",
    "Faults",
    "RequestRecord",
    "Simulator",
    "changed_count",
    "changed_indices",
    "parse_fault",
    "serve",
]
