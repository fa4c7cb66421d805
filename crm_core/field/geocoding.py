"""Reverse geocoding of check-ins through geopy's geocoder interface.

The geocoder is chosen by configuration (``WXCRM_GEOCODER``): ``offline`` (the default; no
network: the nearest known customer address within a kilometre, or none), ``nominatim``,
``baidu`` (geopy's BaiduV3, key in ``WXCRM_GEOCODER_KEY``) or ``amap`` (a small geopy
geocoder for AMap's regeo API). Each provider expects its own coordinate system — Baidu
BD-09, AMap GCJ-02, Nominatim WGS-84 — so points are converted before the call.
"""
from __future__ import annotations

from urllib.parse import urlencode

from geopy.geocoders import BaiduV3, Nominatim
from geopy.geocoders.base import DEFAULT_SENTINEL, Geocoder
from geopy.location import Location
from geopy.point import Point
from sqlalchemy import select

from crm_core import geo
from crm_core.db import db

_config = {"name": "offline", "key": None}


def configure(name: str, key: str | None = None) -> None:
    if name not in ("offline", "nominatim", "baidu", "amap"):
        raise ValueError(f"unknown geocoder {name!r}")
    _config.update(name=name, key=key)


class OfflineGeocoder(Geocoder):
    """Answers from our own data: the nearest customer with an address near the point."""

    def __init__(self, org_id: int, within_m: float = 1000):
        super().__init__()
        self.org_id, self.within_m = org_id, within_m

    def reverse(self, query, *, exactly_one=True, timeout=DEFAULT_SENTINEL):
        from crm_core.customers.models import Customer

        point = Point(query)
        lat, lng = point.latitude, point.longitude
        rows = db.session.execute(
            select(Customer.address, Customer.site_wgs_lat, Customer.site_wgs_lng)
            .where(Customer.org_id == self.org_id, Customer.status == "active", Customer.address.is_not(None),
                   Customer.site_cell.in_(geo.cells_within(lat, lng, self.within_m)))).all()
        best = geo.nearest_within((lat, lng), rows, self.within_m)
        if best is None:
            return None
        d, (address, slat, slng) = best
        loc = Location(f"{address}附近", (slat, slng), {"source": "customer", "distance_m": round(d)})
        return loc if exactly_one else [loc]


class AMap(Geocoder):
    """AMap (高德) reverse geocoding (regeo); expects GCJ-02."""

    api = "https://restapi.amap.com/v3/geocode/regeo"

    def __init__(self, key: str, **kwargs):
        super().__init__(scheme="https", **kwargs)
        self.key = key

    def reverse(self, query, *, exactly_one=True, timeout=DEFAULT_SENTINEL):
        point = Point(query)
        params = {"key": self.key, "location": f"{point.longitude:.6f},{point.latitude:.6f}", "output": "json"}
        return self._call_geocoder(f"{self.api}?{urlencode(params)}",
                                   lambda page: self._parse(page, point, exactly_one), timeout=timeout)

    @staticmethod
    def _parse(page, point, exactly_one):
        address = ((page or {}).get("regeocode") or {}).get("formatted_address") if (page or {}).get("status") == "1" else None
        if not address or not isinstance(address, str):
            return None
        loc = Location(address, (point.latitude, point.longitude), page)
        return loc if exactly_one else [loc]


def reverse(org_id: int, lat: float, lng: float) -> str | None:
    """The address of a WGS-84 point, or None (never raises for a provider failure)."""
    name, key = _config["name"], _config["key"]
    if name == "offline":
        coder, system = OfflineGeocoder(org_id), "wgs84"
    elif name == "nominatim":
        coder, system = Nominatim(user_agent="wxcrm-checkin"), "wgs84"
    elif name == "baidu":
        coder, system = BaiduV3(api_key=key), "bd09"
    else:
        coder, system = AMap(key or ""), "gcj02"
    plat, plng = geo.from_wgs84(lat, lng, system)
    loc = coder.reverse((plat, plng), exactly_one=True)
    return loc.address[:300] if loc is not None else None
