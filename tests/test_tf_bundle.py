"""TensorFlow's tensor bundle read and written without TensorFlow: the files TensorFlow wrote for
the tiny GPT-2 checkpoint in ../shared are the reference for both directions."""
import filecmp
import os
import random
import struct

import numpy as np
import pytest

import tf_bundle
from errors import CheckpointError, MissingFileError
from tests.conftest import SHARED
from tf_bundle import BundleEntry, TensorBundle, masked_crc32c, read_table, table_bytes, write_bundle

TINY = SHARED / 'data' / 'gpt2-tiny-tf'
PREFIX = str(TINY / 'model.ckpt')
DATA = '.data-00000-of-00001'


@pytest.fixture(scope='module')
def tiny_arrays():
    bundle = TensorBundle(PREFIX)
    return {name: np.array(bundle.array(name)) for name in bundle.names}


def test_masked_crc32c_is_leveldbs():
    """CRC32C's check value is 0xe3069283 (RFC 3720's "123456789"); the mask rotates it right by
    15 bits and adds 0xa282ead8, as the SPEC says."""
    crc = 0xe3069283
    assert masked_crc32c(b'123456789') == (((crc >> 15) | (crc << 17)) + 0xa282ead8) % 2 ** 32
    assert masked_crc32c(b'56789', crc=tf_bundle.crc32c.crc32c(b'1234')) == masked_crc32c(b'123456789')


def test_reads_the_index_tensorflow_wrote():
    bundle = TensorBundle(PREFIX)
    assert bundle.num_shards == 1 and len(bundle.names) == 2 + 12 * 2 + 2
    assert bundle.entries['model/wte'] == BundleEntry(1, (50257, 64), 0, 433152, 50257 * 64 * 4,
                                                      bundle.entries['model/wte'].crc32c)
    assert bundle.entries['model/h0/attn/c_attn/w'].shape == (1, 64, 192)
    ends = sorted((e.offset, e.offset + e.size) for e in bundle.entries.values())
    assert ends[0][0] == 0 and all(a[1] == b[0] for a, b in zip(ends, ends[1:]))  # back to back
    assert ends[-1][1] == os.path.getsize(PREFIX + DATA)
    wte = bundle.array('model/wte')
    assert wte.dtype == np.float32 and isinstance(wte, np.memmap)


def test_writer_gives_tensorflows_bytes(tiny_arrays, tmp_path):
    """The index and data files written from the tensors TensorFlow saved equal TensorFlow's, byte
    for byte: the table's layout, separator keys, CRCs and the entries' protobuf encoding."""
    entries = write_bundle(tmp_path / 'model.ckpt', tiny_arrays)
    assert entries == TensorBundle(PREFIX).entries
    for suffix in ('.index', DATA):
        assert filecmp.cmp(PREFIX + suffix, tmp_path / f'model.ckpt{suffix}', shallow=False), suffix


@pytest.mark.parametrize('block_size', [1, 64, 1000])
def test_round_trip_through_many_blocks(tiny_arrays, tmp_path, block_size):
    arrays = dict(tiny_arrays, **{'int/a': np.arange(6, dtype=np.int64).reshape(2, 3),
                                  'half/\u00e9': np.ones((0, 4), np.float16), 'scalar': np.float64(3.5)})
    write_bundle(tmp_path / 'b', arrays, block_size=block_size)
    bundle = TensorBundle(tmp_path / 'b')
    assert bundle.names == sorted(arrays)
    for name, a in arrays.items():
        got = bundle.array(name)
        assert got.dtype == np.asarray(a).dtype and got.shape == np.shape(a) and np.array_equal(got, a)


@pytest.mark.parametrize('piece_bytes', [4, 100, 1 << 20])
def test_pieces_cover_the_tensor_and_check_its_crc(tiny_arrays, tmp_path, piece_bytes):
    bundle = TensorBundle(PREFIX)
    for name in ('model/wpe', 'model/h1/ln_2/b'):
        starts, values = zip(*[(start, np.array(v)) for start, v in bundle.pieces(name, piece_bytes=piece_bytes)])
        assert all(v.nbytes <= max(piece_bytes, 4) for v in values)
        assert list(starts) == list(np.cumsum([0] + [len(v) for v in values[:-1]]))
        np.testing.assert_array_equal(np.concatenate(values), tiny_arrays[name].ravel())
    damaged = TensorBundle(copy_bundle(tmp_path, edit_data=flip(bundle.entries['model/wpe'].offset + 5000)))
    with pytest.raises(CheckpointError, match=r"model/wpe \(bytes 400384\.\.433152\) has masked CRC32C"):
        list(damaged.pieces('model/wpe', piece_bytes=piece_bytes))
    assert sum(len(v) for _, v in damaged.pieces('model/wpe', check_crc=False, piece_bytes=piece_bytes)) == 128 * 64


def test_a_dtype_the_format_lacks_is_refused_before_anything_is_written(tmp_path):
    tensors = {'a': np.zeros(3, np.float32), 'b': np.zeros(2, np.complex64)}
    with pytest.raises(CheckpointError, match=r"write_bundle: b has dtype complex64: expected one of float32, "):
        write_bundle(tmp_path / 'model.ckpt', tensors)
    assert list(tmp_path.iterdir()) == []


def test_a_table_of_many_keys_keeps_them_in_order(tmp_path):
    entries = [(f'k{i:05d}'.encode(), bytes([i % 256]) * (i % 7)) for i in range(1000)]
    for block_size in (1, 100, 262144):
        path = tmp_path / f'table-{block_size}'
        path.write_bytes(table_bytes(entries, block_size=block_size))
        assert read_table(path) == entries


# ------------------------------------------------------------- damaged bundles

def copy_bundle(tmp_path, edit_index=None, edit_data=None):
    """The tiny bundle copied into tmp_path, each file's bytes passed through an edit."""
    out = {}
    for suffix, edit in (('.index', edit_index), (DATA, edit_data)):
        data = (TINY / f'model.ckpt{suffix}').read_bytes()
        (tmp_path / f'model.ckpt{suffix}').write_bytes(edit(bytearray(data)) if edit else data)
        out[suffix] = tmp_path / f'model.ckpt{suffix}'
    return str(tmp_path / 'model.ckpt')


def flip(offset):
    def edit(data):
        data[offset] ^= 0x01
        return bytes(data)
    return edit


def test_bad_magic(tmp_path):
    prefix = copy_bundle(tmp_path, edit_index=flip(-1))
    with pytest.raises(CheckpointError, match=r"model\.ckpt\.index ends with 0xda4775248b80fb57: expected the "
                                              r"LevelDB table magic number 0xdb4775248b80fb57"):
        TensorBundle(prefix)


def test_bad_block_crc(tmp_path):
    prefix = copy_bundle(tmp_path, edit_index=flip(20))  # a byte of a key in the data block
    with pytest.raises(CheckpointError, match=r"model\.ckpt\.index: the data block at byte 0 has CRC32C 0x[0-9a-f]{8} "
                                              r"but its trailer stores 0x[0-9a-f]{8}: expected equal"):
        TensorBundle(prefix)


def test_garbage_and_short_files_are_not_tables(tmp_path):
    path = tmp_path / 'model.ckpt.index'
    path.write_bytes(b'not a table')
    with pytest.raises(CheckpointError, match=r"model\.ckpt\.index is 11 bytes: expected a LevelDB table, at least "
                                              r"its 48-byte footer"):
        read_table(path)
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match=r"ends with 0x[0-9a-f]{16}: expected the LevelDB table magic number"):
        read_table(path)
    with pytest.raises(MissingFileError, match=r"gone\.index is missing"):
        read_table(tmp_path / 'gone.index')


def test_compressed_blocks_are_refused(tmp_path):
    data = bytearray((TINY / 'model.ckpt.index').read_bytes())
    data[900] = 1  # the data block's compression type: snappy
    data[901:905] = struct.pack('<I', masked_crc32c(bytes(data[:901])))
    (tmp_path / 'x.index').write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"x\.index: the data block at byte 0 has compression type 1: "
                                              r"expected 0"):
        read_table(tmp_path / 'x.index')


def test_crc_mismatch_in_the_data_names_the_tensor(tmp_path):
    offset = TensorBundle(PREFIX).entries['model/wpe'].offset + 100
    bundle = TensorBundle(copy_bundle(tmp_path, edit_data=flip(offset)))
    bundle.array('model/wte')
    with pytest.raises(CheckpointError, match=r"model\.ckpt\.data-00000-of-00001: model/wpe \(bytes 400384\.\.433152\) "
                                              r"has masked CRC32C 0x[0-9a-f]{8} but .*model\.ckpt\.index stores "
                                              r"0x6f1823ae: expected equal"):
        bundle.array('model/wpe')


def test_truncated_data_file(tmp_path):
    prefix = copy_bundle(tmp_path, edit_data=lambda d: bytes(d[:-1]))
    with pytest.raises(CheckpointError, match=r"data-00000-of-00001 is 13298943 bytes but model/wte lies at bytes "
                                              r"433152\.\.13298944 .*expected the whole tensor in the file"):
        TensorBundle(prefix)
    os.remove(prefix + DATA)
    with pytest.raises(MissingFileError, match=r"data-00000-of-00001 is missing: expected the data file of "):
        TensorBundle(prefix)


def rewrite_entry(folder, name, **changes):
    """The tiny bundle in `folder` with one BundleEntryProto changed (the table rewritten, CRCs valid)."""
    table = read_table(PREFIX + '.index')
    table = [(k, tf_bundle.entry_bytes(tf_bundle.parse_entry(v, k)._replace(**changes)) if k == name.encode() else v)
             for k, v in table]
    folder.mkdir(exist_ok=True)
    (folder / 'model.ckpt.index').write_bytes(table_bytes(table))
    (folder / f'model.ckpt{DATA}').symlink_to(PREFIX + DATA)
    return str(folder / 'model.ckpt')


def test_entry_size_that_does_not_fit_its_shape_and_dtype(tmp_path):
    with pytest.raises(CheckpointError, match=r"\(model/wpe\): size 32768 bytes, but a float64 tensor of shape "
                                              r"\[128, 64\] takes 65536: expected equal"):
        TensorBundle(rewrite_entry(tmp_path, 'model/wpe', dtype=2))


def test_string_tensors_and_bad_shards_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"\(model/wpe\): dtype string: expected a numeric dtype"):
        TensorBundle(rewrite_entry(tmp_path / 'a', 'model/wpe', dtype=7))
    with pytest.raises(CheckpointError, match=r"\(model/wpe\): shard_id 3: expected below the header's num_shards 1"):
        TensorBundle(rewrite_entry(tmp_path / 'b', 'model/wpe', shard_id=3))


BLOCKS = ((0, 900), (905, 8), (918, 15))  # the tiny index's data, metaindex and index blocks: (offset, size)


def test_any_damage_to_the_index_is_caught_or_harmless():
    """Thousands of random byte changes in the index, each block's CRC made valid again, and cuts:
    each gives CheckpointError or a table that still parses; never another exception."""
    original = (TINY / 'model.ckpt.index').read_bytes()
    rng = random.Random(0)
    outcomes = {'refused': 0, 'parsed': 0}
    for _ in range(4000):
        raw = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        for offset, size in BLOCKS:
            crc = masked_crc32c(bytes(raw[offset:offset + size + 1]))  # the block and its type byte
            raw[offset + size + 1:offset + size + 5] = struct.pack('<I', crc)
        if rng.random() < 0.1:
            raw = raw[:rng.randrange(len(raw))]
        try:
            tf_bundle.parse_index(tf_bundle.parse_table(bytes(raw), 'model.ckpt.index'), 'model.ckpt.index')
            outcomes['parsed'] += 1
        except CheckpointError:
            outcomes['refused'] += 1
    assert outcomes['parsed'] > 50 and outcomes['refused'] > 2000
