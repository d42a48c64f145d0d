"""sipgw-lab's pytest plugin (entry point ``pytest11: sipgw_lab``): it adapts :class:`harness.lab.Lab` to pytest.

Re-exports only; see ``options``, ``markers``, ``fixtures``, ``hooks``, ``outcomes``, ``collect``, ``progress``.
"""

from harness.pytest_plugin.evidence import EvidenceCollector
from harness.pytest_plugin.fixtures import (
    MediaParty,
    device,
    evidence,
    lab,
    other_device,
    other_dtmf_device,
    pstn_party,
    sipgw_inventory,
    sipgw_lab_factory,
    sipgw_repeat,
    sipgw_reset,
    sipgw_settings,
    teams_user,
    wait_until,
)
from harness.pytest_plugin.hooks import (
    pytest_addhooks,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_generate_tests,
    pytest_report_teststatus,
    pytest_runtest_makereport,
    pytest_runtest_protocol,
    pytest_runtest_setup,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
    pytest_unconfigure,
)
from harness.pytest_plugin.options import Settings, pytest_addoption
from harness.pytest_plugin.outcomes import Blocked

__all__ = [
    "Blocked",
    "EvidenceCollector",
    "MediaParty",
    "Settings",
    "device",
    "evidence",
    "lab",
    "other_device",
    "other_dtmf_device",
    "pstn_party",
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_generate_tests",
    "pytest_report_teststatus",
    "pytest_runtest_makereport",
    "pytest_runtest_protocol",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_testnodedown",
    "pytest_unconfigure",
    "sipgw_inventory",
    "sipgw_lab_factory",
    "sipgw_repeat",
    "sipgw_reset",
    "sipgw_settings",
    "teams_user",
    "wait_until",
]
