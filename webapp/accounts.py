"""Analysts' accounts and their API tokens, in the same database as the jobs.

Passwords are hashed with werkzeug (scrypt); API tokens are random, shown once, and stored only as
their SHA-256, which is enough for a 256-bit random secret and lets a token be found in one query.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask_login import UserMixin
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from config import MIN_PASSWORD_CHARS
from worker.models import ApiToken, User, utcnow
from worker.store import JobStore

ADMIN = "admin"
TOKEN_PREFIX = "sr_"
# A token's last use is written at most once a minute: a script polling /status costs a read, not a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


@dataclass(frozen=True, eq=False)
class Analyst(UserMixin):
    """Flask-Login's `current_user`: who is asking, and whether by a bearer token (no cookie,
    so no CSRF check) or by the log-in session."""

    id: int
    username: str
    by_token: bool = False
    session_version: int = 0

    @property
    def is_admin(self) -> bool:
        """The `admin` account, which run.sh makes first and API_TOKEN acts as: it sees and acts on
        every job (`worker.jobs.JobService.may_act`)."""
        return self.username == ADMIN

    def get_id(self) -> str:
        """What the session cookie keeps: the id and the user's session version, so that bumping
        the version (log-out, a new password) ends every session that names the old one."""
        return f"{self.id}:{self.session_version}"


# Read on every request that carries a session or a token, so built once.
_SESSION_USER = select(User.id, User.username, User.session_version).where(User.id == bindparam("user_id"))
_TOKEN_USER = (
    select(ApiToken.id.label("token_id"), ApiToken.last_used_at, User.id.label("user_id"), User.username)
    .join(User)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def normalise_username(name: str) -> str:
    """How a typed username is compared with the stored ones."""
    return name.strip().lower()


def check_username(name: str) -> str:
    name = normalise_username(name)
    if not 1 <= len(name) <= 64 or not set(name) <= USERNAME_CHARS:
        raise AccountError("A username is 1 to 64 characters: letters, digits, dots, dashes and underscores.")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"A password needs at least {MIN_PASSWORD_CHARS} characters.")
    return password


class Accounts:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        # Who API_TOKEN acts as: `admin`, whose row no command removes and whose id never changes,
        # so it is read once per process rather than on every request of a script (issue 14).
        self._token_admin: Analyst | None = None

    def create_user(self, username: str, password: str) -> User:
        user = User(username=check_username(username), password_hash=generate_password_hash(check_password(password)))
        try:
            with self.store.session() as session:
                session.add(user)
        except IntegrityError:
            raise AccountError(f"The user {user.username!r} exists already.") from None
        return user

    def set_password(self, username: str, password: str) -> int:
        """Change the password and end every session of the user; returns the new session version."""
        with self.store.session() as session:
            user = session.scalar(select(User).where(User.username == check_username(username)))
            if user is None:
                raise AccountError(f"There is no user {username!r}.")
            user.password_hash = generate_password_hash(check_password(password))
            user.session_version += 1
            return user.session_version

    def end_sessions(self, user_id: int) -> None:
        """Make every log-in session of the user worthless (log-out does this)."""
        with self.store.session() as session:
            session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))

    def has_users(self) -> bool:
        with self.store.session() as session:
            return session.scalar(select(User.id).limit(1)) is not None

    def by_name(self, username: str) -> User | None:
        with self.store.session() as session:
            return session.scalar(select(User).where(User.username == normalise_username(username)))

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.by_name(username)
        if user is None:
            # Spend the same time as a real check, so timing does not tell which names exist.
            check_password_hash(_DUMMY_HASH, password)
            return None
        return user if check_password_hash(user.password_hash, password) else None

    def create_token(self, username: str, name: str) -> tuple[ApiToken, str]:
        """A new token for the user: the row, and the secret, which is never shown again."""
        user = self.by_name(username)
        if user is None:
            raise AccountError(f"There is no user {username!r}.")
        secret = new_token()
        label = name.strip()[:100] or "token"
        token = ApiToken(user_id=user.id, name=label, token_hash=hash_token(secret), hint=secret[:10])
        with self.store.session() as session:
            session.add(token)
        return token, secret

    def tokens_of(self, user_id: int) -> list[ApiToken]:
        with self.store.session() as session:
            query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at.desc())
            return list(session.scalars(query))

    def revoke_token(self, user_id: int, token_id: int) -> bool:
        with self.store.session() as session:
            token = session.get(ApiToken, token_id)
            if token is None or token.user_id != user_id:
                return False
            session.delete(token)
            return True

    def analyst(self, user: User) -> Analyst:
        """The `current_user` for a log-in session of `user`."""
        return Analyst(user.id, user.username, session_version=user.session_version)

    def user_for_session(self, session_id: str) -> Analyst | None:
        """The logged-in user, read by primary key on every request: a removed user is out at once,
        and so is a session whose version the user has moved past (log-out, a new password).
        `session_id` is `Analyst.get_id()`: an id alone (a session from before versions) is refused.
        A plain connection and a statement built once, as for every per-request read (`JobStore.get_job`)."""
        user_id, _, version = session_id.partition(":")
        try:
            wanted = (int(user_id), int(version))
        except ValueError:
            return None
        with self.store.engine.connect() as connection:
            row = connection.execute(_SESSION_USER, {"user_id": wanted[0]}).first()
        if row is None or row.session_version != wanted[1]:
            return None
        return Analyst(row.id, row.username, session_version=row.session_version)

    def user_for_token(self, secret: str, api_token_setting: str | None) -> Analyst | None:
        """Whose bearer token this is (API_TOKEN is admin's): one indexed read, so a revoked token
        stops at once."""
        if api_token_setting and hmac.compare_digest(secret.encode(), api_token_setting.encode()):
            if self._token_admin is None:
                admin = self.by_name(ADMIN)
                self._token_admin = Analyst(admin.id, admin.username, by_token=True) if admin else None
            return self._token_admin
        now = utcnow()
        with self.store.engine.connect() as connection:
            row = connection.execute(_TOKEN_USER, {"token_hash": hash_token(secret)}).first()
            if row is None:
                return None
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
                connection.execute(update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now))
                connection.commit()
        return Analyst(row.user_id, row.username, by_token=True)

    def warm_up(self, api_token: str | None = None) -> None:
        """Compile the log-in queries before the first request needs them (`webapp.warm_up`), and
        read API_TOKEN's user, which the process keeps."""
        self.by_name(ADMIN)
        self.user_for_session("0:0")  # no user has id 0
        self.user_for_token("", None)  # no token hashes to the empty secret's hash
        if api_token:
            self.user_for_token(api_token, api_token)

    def ensure_admin(self, admin_password: str | None, data_dir: Path) -> str | None:
        """With no users yet, create `admin`: with ADMIN_PASSWORD, or with a random password that is
        written (mode 600) to DATA_DIR/admin-password for run.sh to print once. Returns the file
        written, if any. Safe when several processes start at once: only one creates the user."""
        if self.has_users():
            return None
        password = admin_password or secrets.token_urlsafe(12)
        try:
            self.create_user(ADMIN, password)
        except AccountError:
            return None  # another process made it first
        if admin_password:
            return None
        path = data_dir / "admin-password"
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        return str(path)


_DUMMY_HASH = generate_password_hash("not a real password")
