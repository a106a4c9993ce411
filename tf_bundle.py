"""TensorFlow's "tensor bundle" checkpoint (`model.ckpt.index` + `model.ckpt.data-00000-of-00001`, as
OpenAI's GPT-2 release ships it), read and written without TensorFlow.

The index is a table in LevelDB's SSTable format: data blocks of prefix-compressed (key, value)
entries with restart points, each followed by a 5-byte trailer (compression type, masked CRC32C of
the block and that type byte); an index block of (key, data block handle), each key at or after
the last of its block and before the next block's first; a 48-byte footer
(metaindex and index handles, padding, the magic number); LevelDB's FindShortestSeparator and
FindShortSuccessor give the index block's keys. The empty key holds a BundleHeaderProto,
every other key a variable's name whose value is a BundleEntryProto: dtype, shape, shard, offset,
size and the masked CRC32C of the tensor's bytes in the data file `{prefix}.data-{shard:05d}-of-{n:05d}`.

`TensorBundle(prefix)` parses and checks the whole index (block CRCs, sorted keys, entry sizes
against shapes and dtypes, data files long enough) and gives each tensor as a memory map
whose CRC32C is checked when it is mapped; `write_bundle` writes the same format. Anything malformed
raises CheckpointError naming the file, the value and what was expected; a missing file
MissingFileError.
"""
import math
import os
import struct
from typing import NamedTuple

import crc32c
import numpy as np

from checkpoint import atomic_write
from errors import CheckpointError, MissingFileError

TABLE_MAGIC = 0xdb4775248b80fb57
FOOTER_SIZE = 48  # two block handles of up to 10 + 10 varint bytes each, zero-padded to 40, then the magic
TRAILER_SIZE = 5  # compression type byte, masked CRC32C
PIECE_BYTES = 16 << 20  # TensorBundle.pieces: how much of a tensor is mapped at once
CRC_MASK_DELTA = 0xa282ead8
DTYPES = {1: np.dtype('<f4'), 2: np.dtype('<f8'), 3: np.dtype('<i4'), 4: np.dtype('u1'), 5: np.dtype('<i2'),
          6: np.dtype('i1'), 9: np.dtype('<i8'), 10: np.dtype('?'), 17: np.dtype('<u2'), 19: np.dtype('<f2')}
DTYPE_IDS = {dtype: tf_id for tf_id, dtype in DTYPES.items()}
DT_FLOAT = 1  # TF's DataType for float32
DTYPE_NAMES = {1: 'float32', 2: 'float64', 3: 'int32', 4: 'uint8', 5: 'int16', 6: 'int8', 7: 'string', 9: 'int64',
               10: 'bool', 14: 'bfloat16', 17: 'uint16', 19: 'float16'}


def masked_crc32c(data, crc=0):
    """The masked CRC32C that LevelDB tables and tensor bundles store, of a bytes-like `data`
    (extending the unmasked `crc` of the bytes before it)."""
    crc = crc32c.crc32c(data, crc)
    return mask_crc(crc)


def mask_crc(crc):
    """LevelDB's masking of an unmasked CRC32C: rotate right by 15 bits, add a constant."""
    return (((crc >> 15) | (crc << 17)) + CRC_MASK_DELTA) & 0xffffffff


def dtype_name(tf_id):
    return DTYPE_NAMES.get(tf_id, f'TF dtype {tf_id}')


# ---------------------------------------------------------------- varints and protobuf fields

class _Reader:
    """Varints and byte strings read from `data` starting at `pos`; any overrun raises CheckpointError
    naming `where`."""

    def __init__(self, data, where, pos=0, end=None):
        self.data, self.where, self.pos = data, where, pos
        self.end = len(data) if end is None else end

    def varint(self):
        value, shift = 0, 0
        while True:
            if self.pos >= self.end or shift > 63:
                raise CheckpointError(f"{self.where}: a varint runs past its end at byte {self.pos}: expected a "
                                      f"LevelDB table / protobuf varint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7f) << shift
            if byte < 0x80:
                return value & 0xffffffffffffffff
            shift += 7

    def take(self, n):
        if n > self.end - self.pos:
            raise CheckpointError(f"{self.where}: {n} bytes wanted at byte {self.pos} but only {self.end - self.pos} "
                                  f"remain: expected a well-formed LevelDB table / protobuf")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def done(self):
        return self.pos >= self.end


def _signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def proto_fields(data, where):
    """{field number: [values]} of a protobuf message: ints for varints and fixed32/64, bytes for
    length-delimited fields."""
    r, fields = _Reader(data, where), {}
    while not r.done():
        tag = r.varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value = r.varint()
        elif wire == 1:
            value = struct.unpack('<Q', r.take(8))[0]
        elif wire == 2:
            value = r.take(r.varint())
        elif wire == 5:
            value = struct.unpack('<I', r.take(4))[0]
        else:
            raise CheckpointError(f"{where}: protobuf wire type {wire} (field {number}): expected 0, 1, 2 or 5")
        fields.setdefault(number, []).append(value)
    return fields


def _one(fields, number, where, default=0):
    """The last value of field `number` (protobuf's rule for a repeated scalar), `default` when absent;
    CheckpointError when its wire type is not the default's (bytes for a message, int otherwise)."""
    value = fields.get(number, [default])[-1]
    if type(value) is not type(default):
        raise CheckpointError(f"{where}: protobuf field {number} holds {type(value).__name__}: expected "
                              f"{type(default).__name__}")
    return value


def _messages(fields, number, where):
    """Every value of the repeated message field `number`; CheckpointError for one that is not bytes."""
    values = fields.get(number, [])
    if not all(isinstance(v, bytes) for v in values):
        raise CheckpointError(f"{where}: protobuf field {number} holds an int: expected a message")
    return values


def _varint_bytes(v):
    out = bytearray()
    while True:
        byte, v = v & 0x7f, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(number, value, wire=0):
    """One protobuf field: a varint (wire 0), fixed32 (5) or bytes (2); zero varints are left out."""
    if wire == 0:
        return b'' if value == 0 else _varint_bytes(number << 3) + _varint_bytes(value & 0xffffffffffffffff)
    if wire == 5:
        return _varint_bytes(number << 3 | 5) + struct.pack('<I', value)
    return _varint_bytes(number << 3 | 2) + _varint_bytes(len(value)) + value


# ---------------------------------------------------------------- the SSTable

class _Handle(NamedTuple):
    offset: int
    size: int


def _read_handle(r):
    return _Handle(r.varint(), r.varint())


def _read_block(data, handle, path, what):
    """The contents of the block at `handle` in the table `data`, its trailer's type and CRC checked."""
    end = handle.offset + handle.size + TRAILER_SIZE
    if end > len(data) - FOOTER_SIZE:
        raise CheckpointError(f"{path}: the {what} block at bytes {handle.offset}..{end} runs past the table's "
                              f"{len(data) - FOOTER_SIZE} bytes before its footer: expected a block inside the file "
                              f"(truncated or not a table?)")
    block = data[handle.offset:handle.offset + handle.size]
    kind, stored = struct.unpack('<BI', data[end - TRAILER_SIZE:end])
    actual = masked_crc32c(data[handle.offset:end - 4])  # the block and its type byte
    if actual != stored:
        raise CheckpointError(f"{path}: the {what} block at byte {handle.offset} has CRC32C {actual:#010x} but its "
                              f"trailer stores {stored:#010x}: expected equal (the index file is damaged)")
    if kind != 0:
        raise CheckpointError(f"{path}: the {what} block at byte {handle.offset} has compression type {kind}: "
                              f"expected 0 (uncompressed, as TensorFlow writes bundles)")
    return block


def _block_entries(block, where):
    """[(key, value)] of one block: prefix-compressed entries, then the restart offsets and their count."""
    if len(block) < 4:
        raise CheckpointError(f"{where}: a {len(block)}-byte block: expected at least its 4-byte restart count")
    n_restarts = struct.unpack('<I', block[-4:])[0]
    end = len(block) - 4 * (n_restarts + 1)
    if n_restarts < 1 or end < 0:
        raise CheckpointError(f"{where}: a {len(block)}-byte block declares {n_restarts} restart points: expected "
                              f"1 up to {(len(block) - 4) // 4}")
    r, key, out = _Reader(block, where, end=end), b'', []
    while not r.done():
        shared, unshared, size = r.varint(), r.varint(), r.varint()
        if shared > len(key):
            raise CheckpointError(f"{where}: an entry shares {shared} bytes with a {len(key)}-byte key: expected "
                                  f"at most {len(key)}")
        key = key[:shared] + r.take(unshared)
        out.append((key, r.take(size)))
    return out


def read_table(path):
    """The (key bytes, value bytes) entries of the LevelDB table (SSTable) at `path`, in key order,
    every block's CRC checked. CheckpointError for a file that is not such a table."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise MissingFileError(f"{path} is missing: expected a tensor bundle's index (a LevelDB table)") from None
    return parse_table(data, path)


def parse_table(data, path):
    """read_table's entries of a table's bytes `data`, read from the file `path`."""
    if len(data) < FOOTER_SIZE:
        raise CheckpointError(f"{path} is {len(data)} bytes: expected a LevelDB table, at least its "
                              f"{FOOTER_SIZE}-byte footer")
    magic = struct.unpack('<Q', data[-8:])[0]
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"{path} ends with {magic:#018x}: expected the LevelDB table magic number "
                              f"{TABLE_MAGIC:#018x} (not a tensor bundle index?)")
    footer = _Reader(data, f"{path} (footer)", len(data) - FOOTER_SIZE, len(data) - 8)
    _read_handle(footer)  # the metaindex: a bundle keeps nothing there
    index = _read_block(data, _read_handle(footer), path, 'index')
    entries = []
    for last_key, value in _block_entries(index, f"{path} (index block)"):
        r = _Reader(value, f"{path} (index entry {last_key!r})")
        handle = _read_handle(r)
        block_entries = _block_entries(_read_block(data, handle, path, 'data'),
                                       f"{path} (data block at byte {handle.offset})")
        if block_entries and block_entries[-1][0] > last_key:
            raise CheckpointError(f"{path}: the data block at byte {handle.offset} ends with key "
                                  f"{block_entries[-1][0]!r}, after its index key {last_key!r}: expected keys in order")
        entries += block_entries
    for (a, _), (b, _) in zip(entries, entries[1:]):
        if not a < b:
            raise CheckpointError(f"{path}: key {b!r} follows {a!r}: expected strictly increasing keys")
    return entries


class _BlockBuilder:
    """One block's entries, prefix-compressed against the previous key, a restart every `interval`."""

    def __init__(self, interval):
        self.interval, self.buf, self.restarts, self.last, self.count = interval, bytearray(), [0], b'', 0

    def add(self, key, value):
        if self.count == self.interval:
            self.restarts.append(len(self.buf))
            self.count, self.last = 0, b''
        shared = 0
        while shared < min(len(key), len(self.last)) and key[shared] == self.last[shared]:
            shared += 1
        self.buf += _varint_bytes(shared) + _varint_bytes(len(key) - shared) + _varint_bytes(len(value))
        self.buf += key[shared:] + value
        self.last, self.count = key, self.count + 1

    def finish(self):
        return bytes(self.buf) + b''.join(struct.pack('<I', r) for r in self.restarts) + \
            struct.pack('<I', len(self.restarts))


def _separator(start, limit):
    """A short key >= start and < limit (LevelDB's FindShortestSeparator), for an index entry."""
    n = 0
    while n < min(len(start), len(limit)) and start[n] == limit[n]:
        n += 1
    if n < min(len(start), len(limit)) and start[n] < 0xff and start[n] + 1 < limit[n]:
        return start[:n] + bytes([start[n] + 1])
    return start


def _successor(key):
    """A short key >= key (LevelDB's FindShortSuccessor), for the last index entry."""
    for i, byte in enumerate(key):
        if byte != 0xff:
            return key[:i] + bytes([byte + 1])
    return key


def table_bytes(entries, block_size=262144, restart_interval=16):
    """A LevelDB table (uncompressed) of `entries`, (key bytes, value bytes) in strictly increasing
    key order, laid out as TensorFlow's table builder lays it out: a data block is cut once its
    size reaches `block_size` bytes (TF's default 262144), then come an empty metaindex block, the
    index block (shortened separator keys) and the footer."""
    out, index = bytearray(), _BlockBuilder(1)

    def put(block):
        out.extend(block + b'\0')
        out.extend(struct.pack('<I', masked_crc32c(block + b'\0')))
        return _varint_bytes(len(out) - len(block) - TRAILER_SIZE) + _varint_bytes(len(block))

    block, last, pending = _BlockBuilder(restart_interval), b'', None
    for key, value in entries:
        if pending is not None:
            index.add(_separator(last, key), pending)
            pending = None
        block.add(key, value)
        last = key
        if len(block.buf) + 4 * len(block.restarts) + 4 >= block_size:
            pending, block = put(block.finish()), _BlockBuilder(restart_interval)
    if block.count:
        pending = put(block.finish())
    if pending is not None:
        index.add(_successor(last), pending)
    meta = put(_BlockBuilder(restart_interval).finish())
    handles = meta + put(index.finish())
    out.extend(handles.ljust(FOOTER_SIZE - 8, b'\0') + struct.pack('<Q', TABLE_MAGIC))
    return bytes(out)


# ---------------------------------------------------------------- the bundle

class BundleEntry(NamedTuple):
    """A BundleEntryProto: where a tensor's bytes lie and what they hold."""
    dtype: int  # TF's DataType enum (DT_FLOAT: float32)
    shape: tuple
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked

    @property
    def nbytes(self):
        """The bytes its dtype and shape take (None for a dtype without a fixed width here)."""
        dtype = DTYPES.get(self.dtype)
        return None if dtype is None else dtype.itemsize * math.prod(self.shape)


def parse_entry(value, where):
    """A BundleEntryProto's bytes -> BundleEntry; CheckpointError for a partitioned (sliced) tensor,
    a negative or unknown dimension, or a negative offset or size."""
    f = proto_fields(value, where)
    if 7 in f:
        raise CheckpointError(f"{where}: the tensor is saved as {len(f[7])} slices: expected a whole tensor")
    shape_where = f"{where} (shape)"
    shape_fields = proto_fields(_one(f, 2, where, b''), shape_where)
    if _one(shape_fields, 3, shape_where):
        raise CheckpointError(f"{where}: the shape has unknown rank: expected a known shape")
    dims = [proto_fields(d, f"{where} (dim)") for d in _messages(shape_fields, 2, shape_where)]
    shape = tuple(_signed64(_one(d, 1, f"{where} (dim)")) for d in dims)
    entry = BundleEntry(_one(f, 1, where), shape, *(_signed64(_one(f, i, where)) for i in (3, 4, 5)),
                        _one(f, 6, where))
    for name, v in (('a dimension', min(shape, default=0)), ('shard_id', entry.shard_id), ('offset', entry.offset),
                    ('size', entry.size)):
        if v < 0:
            raise CheckpointError(f"{where}: {name} is {v}: expected a non-negative integer")
    return entry


def entry_bytes(entry):
    """BundleEntryProto's bytes of a BundleEntry (parse_entry's inverse)."""
    dims = b''.join(_field(2, _field(1, d), 2) for d in entry.shape)
    return (_field(1, entry.dtype) + _field(2, dims, 2) + _field(3, entry.shard_id) + _field(4, entry.offset) +
            _field(5, entry.size) + _field(6, entry.crc32c, 5))


def parse_index(table, path):
    """(num_shards, {name: BundleEntry}) of a bundle index's table entries (read_table), read from
    the file `path`: its header (the empty key) checked to be little-endian, every other key decoded
    as a variable's name and its value as a BundleEntryProto."""
    if not table or table[0][0] != b'':
        raise CheckpointError(f"{path}: no bundle header (the empty key): expected a tensor bundle index")
    where = f"{path} (header)"
    header = proto_fields(table[0][1], where)
    num_shards = _one(header, 1, where)
    if _one(header, 2, where) != 0:
        raise CheckpointError(f"{where}: endianness {_one(header, 2, where)} (big): expected 0 (little-endian)")
    if not 1 <= num_shards <= 100000:
        raise CheckpointError(f"{where}: num_shards {num_shards}: expected 1 up to 100000")
    entries = {}
    for key, value in table[1:]:
        try:
            name = key.decode('utf-8')
        except UnicodeDecodeError:
            raise CheckpointError(f"{path}: key {key!r} is not UTF-8: expected a variable's name") from None
        entries[name] = parse_entry(value, f"{path} ({name})")
    return num_shards, entries


class TensorBundle:
    """The tensor bundle with prefix `prefix` (`.../model.ckpt`): `names` (sorted), `entries`
    {name: BundleEntry}, `array(name)` a tensor as a memory map, its CRC32C checked.
    The index is parsed and checked whole on opening: its table, its header (little-endian),
    every entry's dtype, shape and size, and the data files' lengths."""

    def __init__(self, prefix):
        self.prefix = os.fspath(prefix)
        self.index_path = self.prefix + '.index'
        self.num_shards, self.entries = parse_index(read_table(self.index_path), self.index_path)
        self.names = sorted(self.entries)
        self._check_entries()

    def data_path(self, shard_id):
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    def _check_entries(self):
        sizes = {}
        for name in self.names:
            e = self.entries[name]
            where = f"{self.index_path} ({name})"
            if e.shard_id >= self.num_shards:
                raise CheckpointError(f"{where}: shard_id {e.shard_id}: expected below the header's num_shards "
                                      f"{self.num_shards}")
            if e.nbytes is None:
                raise CheckpointError(f"{where}: dtype {dtype_name(e.dtype)}: expected a numeric dtype "
                                      f"({', '.join(DTYPE_NAMES[i] for i in DTYPES)})")
            if e.size != e.nbytes:
                raise CheckpointError(f"{where}: size {e.size} bytes, but a {dtype_name(e.dtype)} tensor of shape "
                                      f"{list(e.shape)} takes {e.nbytes}: expected equal")
            path = self.data_path(e.shard_id)
            if path not in sizes:
                try:
                    sizes[path] = os.path.getsize(path)
                except FileNotFoundError:
                    raise MissingFileError(f"{path} is missing: expected the data file of {self.index_path} "
                                           f"(shard {e.shard_id} of {self.num_shards})") from None
            if e.offset + e.size > sizes[path]:
                raise CheckpointError(f"{path} is {sizes[path]} bytes but {name} lies at bytes {e.offset}.."
                                      f"{e.offset + e.size} ({self.index_path}): expected the whole tensor in the "
                                      f"file (truncated?)")

    def array(self, name, check_crc=True):
        """Tensor `name` as a numpy array of its shape, memory-mapped copy-on-write from its data file
        (writes stay in memory, the file is never changed; delete it to unmap); with check_crc,
        CheckpointError unless its bytes' masked CRC32C is the stored one."""
        e = self.entries[name]
        dtype = DTYPES[e.dtype]
        if e.size == 0:
            return np.zeros(e.shape, dtype)
        values = np.memmap(self.data_path(e.shard_id), dtype=dtype, mode='c', offset=e.offset, shape=e.shape)
        if check_crc:
            self._check_crc(name, crc32c.crc32c(memoryview(values).cast('B')))
        return values

    def pieces(self, name, check_crc=True, piece_bytes=None):
        """Yield (start, values) covering tensor `name` flattened (C order): consecutive 1-D pieces of
        at most piece_bytes (None: PIECE_BYTES), values[i] being element start + i, each memory-mapped copy-on-write on
        its own, so that only the pieces the caller still holds are mapped. With check_crc,
        CheckpointError after the last piece unless the bytes' masked CRC32C is the stored one."""
        e = self.entries[name]
        dtype = DTYPES[e.dtype]
        n, step, crc = e.size // dtype.itemsize, max(1, (piece_bytes or PIECE_BYTES) // dtype.itemsize), 0
        for start in range(0, n, step):
            offset = e.offset + start * dtype.itemsize
            values = np.memmap(self.data_path(e.shard_id), dtype=dtype, mode='c', offset=offset,
                               shape=(min(step, n - start),))
            if check_crc:
                crc = crc32c.crc32c(memoryview(values).cast('B'), crc)
            yield start, values
            del values
        if check_crc:
            self._check_crc(name, crc)

    def _check_crc(self, name, crc):
        """CheckpointError unless `crc`, the unmasked CRC32C of tensor `name`'s bytes, is the index's."""
        e, actual = self.entries[name], mask_crc(crc)
        if actual != e.crc32c:
            raise CheckpointError(f"{self.data_path(e.shard_id)}: {name} (bytes {e.offset}..{e.offset + e.size}) has "
                                  f"masked CRC32C {actual:#010x} but {self.index_path} stores {e.crc32c:#010x}: "
                                  f"expected equal (the data file is damaged)")


def write_bundle(prefix, tensors, block_size=262144):
    """Write {name: numpy array} as a one-shard tensor bundle `{prefix}.index` and
    `{prefix}.data-00000-of-00001`, as TensorFlow's Saver does (values little-endian, C order,
    back to back; an uncompressed index). Each file is written atomically, the index last; a dtype
    the format lacks is a CheckpointError before anything is written. Returns {name: BundleEntry}."""
    prefix = os.fspath(prefix)
    arrays, entries = {}, {}
    for name in sorted(tensors):  # every dtype checked before anything is written
        a = np.asarray(tensors[name], order='C')
        dtype = a.dtype.newbyteorder('<') if a.dtype.byteorder == '>' else a.dtype
        if dtype not in DTYPE_IDS:
            raise CheckpointError(f"write_bundle: {name} has dtype {a.dtype}: expected one of "
                                  f"{', '.join(str(d) for d in DTYPE_IDS)}")
        arrays[name] = a.astype(dtype, copy=False)

    def write_data(tmp):
        with open(tmp, 'wb') as f:
            for name, a in arrays.items():
                raw = memoryview(a).cast('B') if a.size else b''
                entries[name] = BundleEntry(DTYPE_IDS[a.dtype], tuple(a.shape), 0, f.tell(), a.nbytes,
                                            masked_crc32c(raw))
                f.write(raw)

    atomic_write(f"{prefix}.data-00000-of-00001", write_data)
    header = _field(1, 1) + _field(3, _field(1, 1), 2)  # num_shards 1, little-endian, version {producer 1}
    table = [(b'', header)] + [(n.encode('utf-8'), entry_bytes(entries[n])) for n in sorted(entries)]
    index = table_bytes(table, block_size=block_size)

    def write_index(tmp):
        with open(tmp, 'wb') as f:
            f.write(index)

    atomic_write(f"{prefix}.index", write_index)
    return entries
