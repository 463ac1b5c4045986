"""Durable tables of the gcs: one LMDB environment on disk, one named database per
table, msgpack values. Writes are synchronous so a restarted head loses nothing."""
from __future__ import annotations

import os

import lmdb
import msgpack


class Storage:
    TABLES = (b"kv", b"actors", b"nodes", b"jobs")

    def __init__(self, path: str, map_size: int = 1 << 30):
        os.makedirs(path, exist_ok=True)
        self.env = lmdb.open(path, map_size=map_size, max_dbs=len(self.TABLES) + 1,
                             subdir=True, sync=True, metasync=True)
        self.dbs = {name.decode(): self.env.open_db(name) for name in self.TABLES}

    def put(self, table: str, key: bytes, value) -> None:
        with self.env.begin(write=True, db=self.dbs[table]) as txn:
            txn.put(key, msgpack.packb(value, use_bin_type=True))

    def put_raw(self, table: str, key: bytes, value: bytes, overwrite: bool = True) -> bool:
        with self.env.begin(write=True, db=self.dbs[table]) as txn:
            return txn.put(key, value, overwrite=overwrite)

    def get_raw(self, table: str, key: bytes):
        with self.env.begin(db=self.dbs[table]) as txn:
            v = txn.get(key)
            return bytes(v) if v is not None else None

    def delete(self, table: str, key: bytes) -> None:
        with self.env.begin(write=True, db=self.dbs[table]) as txn:
            txn.delete(key)

    def items(self, table: str):
        with self.env.begin(db=self.dbs[table]) as txn:
            return [(bytes(k), msgpack.unpackb(v, raw=False)) for k, v in txn.cursor()]

    def close(self) -> None:
        self.env.close()
