"""Coordinates in China: WGS-84, GCJ-02 and BD-09, distances, and the site cell index.

Phones and map SDKs in China report three systems: WGS-84 (GPS, the browser's
``navigator.geolocation``, WeChat ``getLocation`` by default), GCJ-02 (the mandated offset
system: WeChat ``getLocation({type: 'gcj02'})``, Tencent and AMap) and BD-09 (Baidu, a
further offset on top of GCJ-02). Everything is *stored* in WGS-84; :func:`to_wgs84` and
:func:`from_wgs84` convert on the way in and out with the standard public transforms.

Outside mainland China's bounding box GCJ-02 equals WGS-84 (the offset only applies inside
China); BD-09's own offset is applied everywhere, as Baidu's SDK does. GCJ-02 → WGS-84 has
no closed form: it is inverted iteratively to well under a centimetre.

Nearby lookups use H3 cells (Uber's hexagonal index, the ``h3`` package): each site stores
the cell it falls in, and a radius query becomes an indexed ``IN`` over a small disk of
cells followed by a cheap great-circle filter and an exact geodesic check (geopy) of the few
candidates that pass — never a scan.
"""
from __future__ import annotations

import math

import h3
from geopy.distance import geodesic

COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")
COORD_LABELS = {"wgs84": "WGS-84（GPS）", "gcj02": "GCJ-02（腾讯/高德）", "bd09": "BD-09（百度）"}
CELL_RESOLUTION = 8  # average hexagon edge ~531 m
MAX_RADIUS_M = 5000

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as GCJ-02 uses it
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


class CoordinateError(ValueError):
    """Coordinates that are not numbers, out of range, or in an unknown system."""


def check(lat, lng, system: str = "wgs84") -> tuple[float, float]:
    """Validate and return ``(lat, lng)`` as floats; raises :class:`CoordinateError`."""
    if system not in COORD_SYSTEMS:
        raise CoordinateError("coord_system")
    try:
        lat_f, lng_f = float(lat), float(lng)
    except (TypeError, ValueError):
        raise CoordinateError("not_a_number") from None
    if isinstance(lat, bool) or isinstance(lng, bool) or not (math.isfinite(lat_f) and math.isfinite(lng_f)):
        raise CoordinateError("not_a_number")
    if not (-90.0 <= lat_f <= 90.0) or not (-180.0 <= lng_f <= 180.0):
        raise CoordinateError("out_of_range")
    return lat_f, lng_f


def out_of_china(lat: float, lng: float) -> bool:
    return not (73.66 < lng < 135.05 and 3.86 < lat < 53.55)


def _t_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _t_lng(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lng: float) -> tuple[float, float]:
    if out_of_china(lat, lng):
        return lat, lng
    dlat, dlng = _t_lat(lng - 105.0, lat - 35.0), _t_lng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlng = (dlng * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lat + dlat, lng + dlng


def gcj02_to_wgs84(lat: float, lng: float) -> tuple[float, float]:
    """Iterative inverse: start from the one-step estimate, correct until the forward
    transform lands within 1e-9° (~0.1 mm) of the input."""
    if out_of_china(lat, lng):
        return lat, lng
    wlat, wlng = lat, lng
    for _ in range(30):
        glat, glng = wgs84_to_gcj02(wlat, wlng)
        dlat, dlng = lat - glat, lng - glng
        wlat, wlng = wlat + dlat, wlng + dlng
        if abs(dlat) < 1e-9 and abs(dlng) < 1e-9:
            break
    return wlat, wlng


def gcj02_to_bd09(lat: float, lng: float) -> tuple[float, float]:
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def _bd09_to_gcj02_approx(lat: float, lng: float) -> tuple[float, float]:
    x, y = lng - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def bd09_to_gcj02(lat: float, lng: float, exact: bool = False) -> tuple[float, float]:
    """Baidu's published inverse (a few centimetres off); ``exact`` refines it iteratively
    so that a round trip returns the same point (what storage uses)."""
    glat, glng = _bd09_to_gcj02_approx(lat, lng)
    if exact:
        for _ in range(10):
            blat, blng = gcj02_to_bd09(glat, glng)
            dlat, dlng = lat - blat, lng - blng
            glat, glng = glat + dlat, glng + dlng
            if abs(dlat) < 1e-10 and abs(dlng) < 1e-10:
                break
    return glat, glng


def to_wgs84(lat: float, lng: float, system: str) -> tuple[float, float]:
    if system == "wgs84":
        return lat, lng
    if system == "gcj02":
        return gcj02_to_wgs84(lat, lng)
    if system == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lat, lng, exact=True))
    raise CoordinateError("coord_system")


def from_wgs84(lat: float, lng: float, system: str) -> tuple[float, float]:
    if system == "wgs84":
        return lat, lng
    if system == "gcj02":
        return wgs84_to_gcj02(lat, lng)
    if system == "bd09":
        return gcj02_to_bd09(*wgs84_to_gcj02(lat, lng))
    raise CoordinateError("coord_system")


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic (WGS-84 ellipsoid) distance in metres between two ``(lat, lng)`` points."""
    return geodesic(a, b).meters


_EARTH_MEAN_M = 6371008.8
_SPHERE_SLACK = 1.01  # a great-circle distance is within 0.6 % of the ellipsoid's; 1 % is safe


def sphere_distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance on the mean sphere: ~40x cheaper than :func:`distance_m`,
    within 0.6 % of it. Used to discard candidates, never as a stored or shown figure."""
    lat1, lng1, lat2, lng2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * _EARTH_MEAN_M * math.asin(min(1.0, math.sqrt(h)))


def within(origin: tuple[float, float], rows, radius_m: float, point=lambda r: (r[-2], r[-1])) -> list[tuple[float, object]]:
    """``(geodesic metres, row)`` for the rows whose point lies within ``radius_m`` of ``origin``,
    nearest first. The sphere discards the clear misses; only the rest are measured exactly."""
    out = []
    for row in rows:
        p = point(row)
        if sphere_distance_m(origin, p) <= radius_m * _SPHERE_SLACK:
            d = distance_m(origin, p)
            if d <= radius_m:
                out.append((d, row))
    out.sort(key=lambda x: x[0])
    return out


def nearest_within(origin: tuple[float, float], rows, radius_m: float, point=lambda r: (r[-2], r[-1])):
    """``(geodesic metres, row)`` of the row nearest ``origin`` within ``radius_m``, or None.
    Only the rows the sphere cannot tell apart from the nearest are measured exactly."""
    ranked = sorted(((sphere_distance_m(origin, point(r)), i, r) for i, r in enumerate(rows)), key=lambda x: x[:2])
    if not ranked or ranked[0][0] > radius_m * _SPHERE_SLACK:
        return None
    bound = ranked[0][0] * _SPHERE_SLACK ** 2  # anything farther on the sphere is farther on the ellipsoid
    best = None
    for s, _, row in ranked:
        if s > bound:
            break
        d = distance_m(origin, point(row))
        if d <= radius_m and (best is None or d < best[0]):
            best = (d, row)
    return best


def cell_of(lat: float, lng: float) -> str:
    """The H3 cell a WGS-84 point falls in (stored with every customer site)."""
    return h3.latlng_to_cell(lat, lng, CELL_RESOLUTION)


def cells_within(lat: float, lng: float, radius_m: float) -> list[str]:
    """Every cell that may hold a point within ``radius_m`` of ``(lat, lng)``, and few others.

    Measured locally (H3 cells vary in size over the globe): ``spacing`` is the distance
    from the centre cell to its nearest neighbour; a cell's corners lie spacing/√3 from its
    centre (``circum``, taken with a 15 % margin). A point within r of q lies in a cell whose
    centre is within r + circum of q — that is the filter. To enumerate the candidates: q is
    within circum of its own cell's centre, and grid ring k's centres are at least
    k·spacing·√3/2 from it (the hexagonal ring's side midpoints), so k = ceil((r + 2·circum) /
    (spacing·√3/2)) rings contain every cell the filter can keep.
    """
    origin = cell_of(lat, lng)
    c0 = h3.cell_to_latlng(origin)
    spacing = min(h3.great_circle_distance(c0, h3.cell_to_latlng(n), unit="m") for n in h3.grid_ring(origin, 1))
    circum = spacing / math.sqrt(3) * 1.15
    k = max(1, math.ceil((radius_m + 2 * circum) / (spacing * math.sqrt(3) / 2)))
    reach = radius_m + circum
    q = (lat, lng)
    return [c for c in h3.grid_disk(origin, k) if h3.great_circle_distance(q, h3.cell_to_latlng(c), unit="m") <= reach]
