"""Password hashing and token helpers (werkzeug's scrypt hashing; nothing hand-rolled)."""
from __future__ import annotations

import hashlib
import secrets

from werkzeug.security import check_password_hash, generate_password_hash

MIN_PASSWORD_LENGTH = 8
# werkzeug's default (scrypt). The test suite lowers the cost for speed; hashes made with any
# method keep verifying, since the method is stored in the hash.
HASH_METHOD = "scrypt"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def verify_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# a fixed hash to compare against when the user does not exist, so timing does not reveal usernames
DUMMY_HASH = generate_password_hash("not-a-real-password-" + secrets.token_hex(4))
