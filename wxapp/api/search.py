"""Global search: ``GET /api/v1/search?q=`` — customers, contacts, leads and tickets within the caller's scope."""
from __future__ import annotations

from flask import g
from pydantic import Field

from wxapp import search
from wxapp.api import bp
from wxapp.openapi import Model, api


class SearchQuery(Model):
    q: str = Field(min_length=search.MIN_LENGTH, max_length=100, description="a name, phone or number (at least 2 characters)")
    per_kind: int = Field(default=5, ge=1, le=20)


@api.operation(bp, "/search", "GET", summary="Search customers, contacts, leads and tickets (name, phone, number)",
               tags=("customers",), query=SearchQuery)
def search_everything(query: SearchQuery):
    """Each kind only for roles that may see it, within the data scope; up to ``per_kind`` each, with the total."""
    return search.everything(g.actor, query.q, query.per_kind)
