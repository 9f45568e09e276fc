"""Time-ordered UUIDv7 ids: new rows sort after old ones, and indexes stay append-mostly."""

import uuid

import uuid_utils


def new_id() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)
