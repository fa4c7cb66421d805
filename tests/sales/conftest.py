"""The sales tests' shared team: make_team's people on both databases, and their API headers by name."""
from __future__ import annotations

import pytest

from crm_core.db import db
from tests.factories import make_team


@pytest.fixture
def team(any_app):
    users = make_team()
    db.session.commit()
    return users


@pytest.fixture
def h(team, client, auth_headers):
    """Bearer headers per member of the team (``h["manager"]``), everyone with an employee."""
    return {k: auth_headers(u) for k, u in team.items() if k != "nobody"}
