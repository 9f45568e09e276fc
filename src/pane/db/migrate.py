"""Run alembic from an installed package: the migrations folder ships inside the wheel."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

import pane
from pane.db.database import migration_engine


def migrations_dir() -> Path:
    packaged = Path(pane.__file__).parent / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(pane.__file__).resolve().parents[2] / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
    finally:
        await engine.dispose()
