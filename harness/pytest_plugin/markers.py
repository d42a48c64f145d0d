"""The ``feature`` marker: ties a test to a seed feature of ``device_profiles/features.yaml``.

``@pytest.mark.feature("make_calls")`` — the id is a matrix column. A test with an unknown id is a collection
error that lists the known ids; a test with two different ``feature`` markers is one too.
"""

from __future__ import annotations

import pytest

MARKERS = (
    "feature(id): ties the test to a seed feature of device_profiles/features.yaml (a matrix column)",
    "sipgw_infrastructure: the test exercises lab infrastructure, not a device feature (no matrix cell)",
)


class FeatureMarkerError(Exception):
    """A ``feature`` marker is malformed; the message names the test and the known ids."""


def register(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


def known_features() -> list[str]:
    from device_profiles.catalogue import default_catalogue

    return default_catalogue().feature_ids()


def feature_of(item: pytest.Item) -> str | None:
    """The seed feature id a test is marked with (validated), or None when it has no marker."""
    marks = list(item.iter_markers("feature"))
    if not marks:
        return None
    ids = []
    for m in marks:
        if len(m.args) != 1 or m.kwargs or not isinstance(m.args[0], str):
            raise FeatureMarkerError(
                f"{item.nodeid}: use @pytest.mark.feature(\"<feature id>\") with exactly one id; "
                f"got args={m.args!r} kwargs={m.kwargs!r}")
        ids.append(m.args[0])
    if len(set(ids)) > 1:
        raise FeatureMarkerError(f"{item.nodeid}: marked with several features {sorted(set(ids))}; "
                                 "a test belongs to one matrix column")
    fid = ids[0]
    known = known_features()
    if fid not in known:
        raise FeatureMarkerError(f"{item.nodeid}: unknown feature {fid!r} in @pytest.mark.feature; "
                                 f"known feature ids: {', '.join(known)}")
    return fid
