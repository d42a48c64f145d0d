"""The tenant file: a contract for `gateway serve --tenant`, with located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.tenant import TenantError, load_tenant

GOOD = """\
users:
  - {number: "+14255550101", name: Avery Chen, username: avery, password: pw1}
  - number: "+14255550102"
    name: Blake Rivera
    username: blake
    password: pw2
    policy: {allow_sip_devices_calling: true, allow_call_redirect: false}
    teams_client: true
  - {name: No Number, username: nonum, password: pw3}
pstn:
  - "+12065550100"
  - "+1206555*"
  - {prefix: "+44", length: 12}
"""


def test_good_tenant():
    t = load_tenant("t.yaml", GOOD)
    users = {u.username: (u, pw) for u, pw in t.users}
    assert users["blake"][0].policy.allow_call_redirect is False and users["blake"][0].teams_client
    assert users["nonum"][0].number is None and users["avery"][1] == "pw1"
    assert [(r.prefix, r.length) for r in t.pstn] == [("+12065550100", 11), ("+1206555", None), ("+44", 12)]
    assert t.pstn[1].matches("+12065559999") and not t.pstn[0].matches("+12065550101")


def problems(text):
    with pytest.raises(TenantError) as info:
        load_tenant("t.yaml", text)
    return [str(p) for p in info.value.problems]


def test_located_errors():
    msgs = problems(GOOD.replace("password: pw2", "passwd: pw2"))
    assert any(m.startswith("t.yaml:") and "unknown key 'passwd'" in m for m in msgs)
    assert any("missing required key 'password'" in m for m in msgs)
    (m,) = problems(GOOD.replace('"+14255550102"', '"call me"'))
    assert m.startswith("t.yaml:3:") and "not a phone number" in m
    (m,) = problems(GOOD.replace('"+1206555*"', '"12-34"'))
    assert "not a number or prefix" in m
    (m,) = problems(GOOD.replace("username: blake", "username: avery"))
    assert "listed twice" in m
    (m,) = problems("users: [\n")
    assert "YAML syntax" in m
    (m,) = problems(GOOD.replace("allow_call_redirect: false", "allow_call_redirect: perhaps"))
    assert "t.yaml:7:" in m and "allow_call_redirect" in m


def test_empty_tenant_is_empty():
    t = load_tenant("t.yaml", "")
    assert t.users == () and t.pstn == ()


def test_the_readme_example_is_a_valid_tenant_file():
    """The README documents the schema with an example under "The tenant file": it must load as it stands."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    intro = readme.index("The tenant file (`--tenant`")
    start = readme.index("```yaml\n", intro) + len("```yaml\n")
    assert readme[intro:start].count("```") == 1, "the example follows the tenant file's introduction"
    example = readme[start:readme.index("```", start)]
    t = load_tenant("README.md", example)
    (user, password), = t.users
    assert (user.username, user.number, password) == ("avery", "+14255550101", "s3cret")
    assert user.policy.allow_call_redirect and user.teams_client and len(t.pstn) == 3
