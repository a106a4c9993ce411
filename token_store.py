"""A corpus encoded once into flat uint16 memory maps: what pre-training reads windows from.

    store = build_token_store(['books/'], text_utils.CharTokenizer.fit(['books/']), 'cache/', valid_fraction=0.01)
    train, valid = store['train'], store['valid']            # TokenSplit: .tokens (memmap), .offsets
    x = train.windows(train.sample_starts(rng, 64, 513), 513)  # (64, 513) int64

The tokenizer is any text_utils.Tokenizer: the store reads its encode_document, vocab_size
and fingerprint. Inputs are text files (each one document), folders of them (walked in sorted order:
*.txt, *.jsonl) and JSONL files (each line an object whose `text` field is one
document). Documents go to the validation split by a hash of their position, a
`valid_fraction` of them; with a single document, its last `valid_fraction` of tokens
is the validation split instead. Given `min_valid_tokens` (one window), a validation
split shorter than that is topped up from the end of the corpus (_top_up_valid). Each
split is one flat `uint16` file of token ids (documents back to back, each ending with
`sep_id` when given: it is added unless the document's last id already is that) plus
`offsets.npy`, the token index where each document starts. A file that is not UTF-8 is
left out whole and named in the store's meta['skipped'] (or, with strict=True, refused
with NotUTF8Error naming the file); so is an entry that is not a regular file (a named
pipe would block the build).

The store lives in `cache_dir/<key>/`, where key hashes every input's content, the
tokenizer's fingerprint, `sep_id` and `valid_fraction` (and `min_valid_tokens` for a
topped-up split): the same inputs reuse it, a changed input or tokenizer builds a new
one. It is built in a temporary folder and renamed into place, so an interrupted build
leaves nothing a later run would trust; a killed build's temporary folder is removed by
the next build (remove_stale_builds). A store whose files do not match its meta is
refused on open and rebuilt on build.
Memory stays bounded whatever the corpus size: text is read in chunks of about
`CHUNK_CHARS` characters cut at line ends, and ids are written as they come. Files
are encoded in parallel processes, each into part files joined in order at the end.
"""
import contextlib
import fcntl
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import time
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm import tqdm

from corpus import CHUNK_CHARS, NotUTF8Error, file_digest, iter_documents, walk_inputs
from errors import DataError, DataWarning, InputError, one_line
from text_utils import MAX_ID

META = 'meta.json'
# A validation split topped up to one window takes whole documents only while they hold at
# most this share of the corpus; otherwise the last tokens (see _top_up_valid).
WHOLE_DOCS_SHARE = 0.1
# A build holds an exclusive lock on this file of its temporary folder while it runs; the
# lock dies with the process, so a later build can tell a dead build's folder from a live one.
OWNER = 'owner.lock'
# A temporary folder without an owner file (written by an older version) is a dead build's
# when nothing in it changed for this long.
STALE_SECONDS = 600


# ------------------------------------------------------------------ the store

class TokenSplit:
    """One split of a store: `tokens` (n_tokens,) uint16 memmap, `offsets` (n_docs,) int64
    start of each document."""

    def __init__(self, folder, name):
        self.tokens = np.memmap(os.path.join(folder, f'{name}.u16'), dtype=np.uint16, mode='r') \
            if os.path.getsize(os.path.join(folder, f'{name}.u16')) else np.zeros(0, np.uint16)
        self.offsets = np.load(os.path.join(folder, f'{name}_offsets.npy'))

    def __len__(self):
        return len(self.tokens)

    def sample_starts(self, rng, n_windows, length):
        """(n_windows,) start positions drawn uniformly so that every window of `length`
        tokens lies inside the split. Raises DataError when the split is shorter."""
        if len(self.tokens) < length:
            raise DataError(f"the split holds {len(self.tokens)} tokens, fewer than one window of {length}: "
                            f"expected a larger corpus (or a smaller --n_ctx)")
        return rng.integers(0, len(self.tokens) - length + 1, size=n_windows)

    def windows(self, starts, length):
        """(len(starts), length) int64 array of the windows at `starts`."""
        if len(starts) and (min(starts) < 0 or max(starts) + length > len(self.tokens)):
            raise InputError(f"a window of {length} tokens at {max(starts)} reads past the split's "
                             f"{len(self.tokens)} tokens")
        return np.stack([np.asarray(self.tokens[s:s + length], dtype=np.int64) for s in starts])


def store_key(inputs, tokenizer, sep_id, valid_fraction, min_valid_tokens=None):
    """The cache key: every input's content, the tokenizer, the separator and the split
    (min_valid_tokens only for a store whose validation split had to be topped up to it)."""
    split = [valid_fraction] if min_valid_tokens is None else [valid_fraction, min_valid_tokens]
    h = hashlib.sha256(json.dumps([tokenizer.fingerprint(), sep_id, *split]).encode())
    for path in inputs:
        h.update(file_digest(path).encode())
    return h.hexdigest()[:32]


def _is_valid(file_index, doc_index, valid_fraction):
    """A document's split, fixed by its file and its place in the file: a hash, not the
    order, so that the validation documents are spread through the corpus (and files can
    be encoded in parallel)."""
    key = file_index.to_bytes(8, 'little') + doc_index.to_bytes(8, 'little')
    return zlib.crc32(key) / 2 ** 32 < valid_fraction


class _SplitWriter:
    """Appends documents' ids to `{name}.u16` and records their offsets in `{name}_offsets.npy`."""

    def __init__(self, folder, name):
        self.folder, self.name = folder, name
        self.f = open(os.path.join(folder, f'{name}.u16'), 'wb')
        self.offsets, self.n = [], 0

    def start_document(self):
        self.offsets.append(self.n)

    def reset(self):
        """Forget everything written: the file's documents are left out."""
        self.f.seek(0)
        self.f.truncate()
        self.offsets, self.n = [], 0

    def write(self, ids):
        self.f.write(np.ascontiguousarray(ids, dtype=np.uint16).tobytes())
        self.n += len(ids)

    def close(self):
        self.f.close()
        np.save(os.path.join(self.folder, f'{self.name}_offsets.npy'), np.asarray(self.offsets, dtype=np.int64))


class _TextSeen:
    """The chunks of a document, passed through; `seen` tells whether one held non-whitespace."""

    def __init__(self, chunks):
        self.chunks, self.seen = chunks, False

    def __iter__(self):
        for chunk in self.chunks:
            self.seen = self.seen or bool(chunk.strip())
            yield chunk


def _encode_file(file_index, path, tokenizer, folder, sep_id, valid_fraction, strict=False):
    """Encode one input file into part files `{file_index}.train.u16` / `.valid.u16` (and
    offsets) in `folder`; each document ends with `sep_id` (when given) unless its own last
    id is already that. A file that turns out not to be UTF-8 is left out whole (its part
    files emptied), or with `strict` raises NotUTF8Error. Returns (n_docs, whether any chunk
    held non-whitespace, None or the message of the skipped file)."""
    writers = {name: _SplitWriter(folder, f'{file_index}.{name}') for name in ('train', 'valid')}
    n_docs, has_text = 0, False
    try:
        for doc in iter_documents(path, CHUNK_CHARS):
            w = writers['valid' if _is_valid(file_index, n_docs, valid_fraction) else 'train']
            w.start_document()
            last, text = None, _TextSeen(doc)
            try:
                for ids in tokenizer.encode_document(text):
                    w.write(ids)
                    last = int(ids[-1]) if len(ids) else last
            except InputError as err:  # a character outside a given vocabulary: say where
                raise InputError(f"{path}: {err}") from None
            has_text = has_text or text.seen
            if sep_id is not None and last != sep_id:
                w.write([sep_id])
            n_docs += 1
    except NotUTF8Error as err:
        if strict:
            raise
        for w in writers.values():
            w.reset()
        return 0, False, str(err)
    finally:
        for w in writers.values():
            w.close()
    return n_docs, has_text, None


def _join_parts(folder, n_files, name):
    """Concatenate the part files of split `name` in file order into `{name}.u16` with
    offsets; returns its token count. Copies in blocks: memory stays bounded."""
    offsets, n = [], 0
    with open(os.path.join(folder, f'{name}.u16'), 'wb') as out:
        for i in range(n_files):
            part = os.path.join(folder, f'{i}.{name}.u16')
            offsets.append(np.load(os.path.join(folder, f'{i}.{name}_offsets.npy')) + n)
            with open(part, 'rb') as f:
                shutil.copyfileobj(f, out, 1 << 24)
            n += os.path.getsize(part) // 2
            os.remove(part)
            os.remove(os.path.join(folder, f'{i}.{name}_offsets.npy'))
    np.save(os.path.join(folder, f'{name}_offsets.npy'), np.concatenate(offsets).astype(np.int64))
    return n


def _encode_into(inputs, tokenizer, folder, sep_id, valid_fraction, verbose, workers, strict=False):
    """Encode every input (in `workers` processes when more than one) into `folder`'s
    train and valid files; returns (n_docs, n_train_tokens, n_valid_tokens, messages of the
    files skipped as not UTF-8)."""
    jobs = [(i, path, tokenizer, folder, sep_id, valid_fraction, strict) for i, path in enumerate(inputs)]
    bar = dict(total=len(jobs), desc='encoding', disable=not verbose, leave=False)
    if workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context('fork')  # the workers inherit the tokenizer: no pickling of spaCy
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx) as pool:
            results = list(tqdm(pool.map(_encode_file, *zip(*jobs)), **bar))
    else:
        results = [_encode_file(*job) for job in tqdm(jobs, **bar)]
    skipped = [message for _, _, message in results if message is not None]
    where = f"--data {' '.join(inputs[:3])}{' ...' if len(inputs) > 3 else ''}"
    if len(skipped) == len(inputs):
        raise DataError(f"{where}: none of the {len(inputs)} files is UTF-8 text (first: {skipped[0]})")
    if not any(has_text for _, has_text, _ in results):
        raise DataError(f"{where}: the corpus is empty or only whitespace: expected some text")
    n_docs = sum(n for n, _, _ in results)
    return n_docs, _join_parts(folder, len(jobs), 'train'), _join_parts(folder, len(jobs), 'valid'), skipped


def _move_tail(folder, n_train, n_valid, n_move):
    """Move the last `n_move` tokens of train.u16 to the end of valid.u16 (a document cut
    there starts a document of the validation split), offsets included; returns the new
    (n_train, n_valid). Copies in blocks: memory stays bounded."""
    cut = max(n_train - n_move, 0)
    if cut == n_train:
        return n_train, n_valid
    train_offsets = np.load(os.path.join(folder, 'train_offsets.npy'))
    valid_offsets = np.load(os.path.join(folder, 'valid_offsets.npy'))
    moved = np.concatenate([[cut], train_offsets[train_offsets > cut]]) - cut + n_valid
    tokens = np.memmap(os.path.join(folder, 'train.u16'), dtype=np.uint16, mode='r') if n_train else []
    with open(os.path.join(folder, 'valid.u16'), 'ab') as f:
        for start in range(cut, n_train, 1 << 24):
            f.write(np.asarray(tokens[start:min(start + (1 << 24), n_train)]).tobytes())
    del tokens
    os.truncate(os.path.join(folder, 'train.u16'), cut * 2)
    np.save(os.path.join(folder, 'train_offsets.npy'), train_offsets[train_offsets < cut])
    np.save(os.path.join(folder, 'valid_offsets.npy'), np.concatenate([valid_offsets, moved]).astype(np.int64))
    return cut, n_valid + n_train - cut


def _top_up_valid(folder, n_train, n_valid, valid_fraction, min_valid_tokens):
    """Give a validation split that holds fewer than `min_valid_tokens` (one window) enough:
    the training split's last whole documents, as few as reach it, when they hold at most
    WHOLE_DOCS_SHARE of the corpus; otherwise its last tokens, up to max(valid_fraction of
    the corpus, min_valid_tokens) in all. A corpus too small to keep a window for training
    too is left as it is. Returns the new (n_train, n_valid)."""
    need = min_valid_tokens - n_valid
    starts = np.load(os.path.join(folder, 'train_offsets.npy'))
    reaching = starts[n_train - starts >= need]
    if len(reaching) and n_train - reaching[-1] <= WHOLE_DOCS_SHARE * (n_train + n_valid):
        n_move = n_train - int(reaching[-1])
    else:
        n_move = max(int((n_train + n_valid) * valid_fraction), min_valid_tokens) - n_valid
    if n_train - n_move < min_valid_tokens:
        return n_train, n_valid
    return _move_tail(folder, n_train, n_valid, n_move)


def build_token_store(paths, tokenizer, cache_dir, valid_fraction=0.0, sep_id=None, verbose=True, workers=None,
                      strict=False, min_valid_tokens=0):
    """Encode the corpus at `paths` once (or reuse the store its key names) and return
    {'train': TokenSplit, 'valid': TokenSplit or None, 'meta': dict}. Files are encoded in
    `workers` processes (default: one per CPU core, at most one per file). A file that is
    not UTF-8 is left out and listed in meta['skipped'] (one message per file), or with
    `strict` refused with NotUTF8Error naming it; an entry that is not a regular file (a
    named pipe) is always left out and listed there. With valid_fraction > 0, a validation
    split of fewer than `min_valid_tokens` is topped up (_top_up_valid). A cached store
    whose files do not match its meta is rebuilt, with a DataWarning."""
    if not 0 <= valid_fraction < 1:
        raise InputError(f"--valid_fraction {valid_fraction}: expected a fraction in [0, 1)")
    if tokenizer.vocab_size > MAX_ID + 1:
        raise InputError(f"the tokenizer has {tokenizer.vocab_size} symbols: the store keeps ids as uint16 "
                         f"(at most {MAX_ID + 1})")
    inputs, not_regular = walk_inputs(paths)
    min_valid = min_valid_tokens if valid_fraction > 0 else 0
    drawn = os.path.join(cache_dir, store_key(inputs, tokenizer, sep_id, valid_fraction))
    topped = os.path.join(cache_dir, store_key(inputs, tokenizer, sep_id, valid_fraction, min_valid))
    store = _cached_store(drawn, tokenizer)
    if store is None or store['meta']['n_valid_tokens'] < min_valid:
        store = _cached_store(topped, tokenizer)
    if store is None:
        folder = _build(inputs, tokenizer, drawn, topped, sep_id, valid_fraction, min_valid, verbose,
                        workers or os.cpu_count() or 1, strict)
        store = open_token_store(folder, tokenizer)
    if strict and store['meta'].get('skipped'):  # a store built without strict, reused
        raise NotUTF8Error(store['meta']['skipped'][0])
    store['meta']['skipped'] = not_regular + store['meta'].get('skipped', [])
    return store


def _cached_store(folder, tokenizer):
    """The store in `folder`, or None when there is none; a damaged one (files that do not
    match its meta) is moved out of the way and removed, with a DataWarning, and None returned."""
    if not os.path.exists(folder):
        return None
    try:
        return open_token_store(folder, tokenizer)
    except DataError as err:
        warnings.warn(f"{one_line(err)}: rebuilt", DataWarning)
    trash = tempfile.mkdtemp(dir=os.path.dirname(folder) or '.', prefix='.' + os.path.basename(folder) + '.')
    try:
        os.rename(folder, os.path.join(trash, 'damaged'))
    except OSError:  # another build moved it first
        pass
    shutil.rmtree(trash, ignore_errors=True)
    return None


def _build(inputs, tokenizer, drawn, topped, sep_id, valid_fraction, min_valid, verbose, workers, strict=False):
    """Encode the corpus into a temporary folder beside the store's, then rename it into
    place: `drawn` when the drawn validation split holds `min_valid` tokens, else `topped`
    after _top_up_valid. Returns the folder. Stale temporary folders of dead builds go first."""
    cache_dir = os.path.dirname(drawn) or '.'
    os.makedirs(cache_dir, exist_ok=True)
    remove_stale_builds(cache_dir)
    tmp = tempfile.mkdtemp(dir=cache_dir, prefix='.' + os.path.basename(drawn) + '.')
    try:
        with _owner_lock(tmp):
            n_docs, n_train, n_valid, skipped = _encode_into(inputs, tokenizer, tmp, sep_id, valid_fraction,
                                                             verbose, workers, strict)
            if n_docs == 1 and valid_fraction > 0:  # its own tail: cut once, at the size topping up asks
                n_move = int(n_train * valid_fraction)
                folder = drawn if n_move >= min_valid else topped
                if n_train - max(n_move, min_valid) >= min_valid:
                    n_move = max(n_move, min_valid)
                n_train, n_valid = _move_tail(tmp, n_train, n_valid, n_move)
            else:
                folder = drawn if n_valid >= min_valid else topped
                if n_valid < min_valid:
                    n_train, n_valid = _top_up_valid(tmp, n_train, n_valid, valid_fraction, min_valid)
            meta = dict(tokenizer=tokenizer.fingerprint(), vocab_size=tokenizer.vocab_size, sep_id=sep_id,
                        valid_fraction=valid_fraction, n_docs=n_docs, n_train_tokens=n_train,
                        n_valid_tokens=n_valid, skipped=skipped,
                        inputs=[dict(path=p, bytes=os.path.getsize(p)) for p in inputs])
            if folder == topped:
                meta['min_valid_tokens'] = min_valid
            with open(os.path.join(tmp, META), 'w', encoding='utf-8') as f:
                json.dump(meta, f, indent=1)
        os.replace(tmp, folder) if not os.path.exists(folder) else shutil.rmtree(tmp)
        return folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _owner_lock(tmp):
    """Hold an exclusive lock on tmp/OWNER for the block. The file is locked before it gets
    its name, so no other build ever sees it unlocked while this one lives."""
    fd, path = tempfile.mkstemp(dir=tmp, prefix=OWNER + '.')
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(path, os.path.join(tmp, OWNER))
        yield
    finally:
        # Unnamed before unlocked: a build that sees the file unlocked may take the folder for a dead one.
        if os.path.exists(os.path.join(tmp, OWNER)):
            os.remove(os.path.join(tmp, OWNER))
        os.close(fd)


def remove_stale_builds(cache_dir):
    """Remove the temporary folders of builds that died in cache_dir (killed, power lost):
    those whose owner lock no process holds, or (without an owner file) where nothing changed
    for STALE_SECONDS. A live build's folder is left alone."""
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        if re.fullmatch(r'\.[0-9a-f]{32}\..+', name) and os.path.isdir(path) and _is_dead_build(path):
            shutil.rmtree(path, ignore_errors=True)


def _is_dead_build(tmp):
    """Whether the temporary folder `tmp` belongs to no running build (see remove_stale_builds)."""
    try:
        fd = os.open(os.path.join(tmp, OWNER), os.O_RDONLY)
    except FileNotFoundError:
        try:
            newest = max([os.path.getmtime(tmp)] + [e.stat().st_mtime for e in os.scandir(tmp)])
        except OSError:  # removed meanwhile
            return False
        return time.time() - newest > STALE_SECONDS
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


REQUIRED_META = ('tokenizer', 'vocab_size', 'n_docs', 'n_train_tokens', 'n_valid_tokens')


def open_token_store(folder, tokenizer=None):
    """The store in `folder` as {'train', 'valid' (None when empty), 'meta', 'folder'}; with
    `tokenizer`, refuse a store another tokenizer built. Raises DataError for a store whose
    files do not match its meta (sizes, offsets, ids within the vocabulary)."""
    try:
        with open(os.path.join(folder, META), encoding='utf-8') as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or not all(isinstance(meta.get(k), (int, str)) for k in REQUIRED_META):
            raise ValueError(f"expected the keys {', '.join(REQUIRED_META)}")
    except (OSError, ValueError) as err:
        raise DataError(f"{folder}: not a token store ({err}); expected the folder build_token_store "
                        f"writes") from None
    if tokenizer is not None and meta.get('tokenizer') != tokenizer.fingerprint():
        raise DataError(f"{folder}: built with tokenizer {meta.get('tokenizer', '?')[:24]}..., not this one "
                        f"({tokenizer.fingerprint()[:24]}...): expected a store of the same tokenizer")
    for name in ('train', 'valid'):
        damage = _split_damage(folder, name, meta[f'n_{name}_tokens'], meta['vocab_size'])
        if damage:
            raise DataError(f"{folder}: a damaged token store: {damage}; expected the files build_token_store "
                            f"wrote (delete the folder to rebuild it)")
    valid = TokenSplit(folder, 'valid') if meta['n_valid_tokens'] else None
    return {'train': TokenSplit(folder, 'train'), 'valid': valid, 'meta': meta, 'folder': folder}


def _split_damage(folder, name, n_tokens, vocab_size):
    """What is wrong with split `name` of the store in `folder` against its meta's token count
    and vocabulary size, or None."""
    path = os.path.join(folder, f'{name}.u16')
    try:
        size = os.path.getsize(path)
        offsets = np.load(os.path.join(folder, f'{name}_offsets.npy'))
    except (OSError, ValueError) as err:
        return f"{name}: {one_line(err)}"
    if size != 2 * n_tokens:
        return f"{name}.u16 is {size} bytes, {META} says {n_tokens} tokens ({2 * n_tokens} bytes)"
    if offsets.ndim != 1 or np.any(np.diff(offsets) < 0) or (len(offsets) and not 0 <= offsets[0] <= offsets[-1]
                                                              <= n_tokens):
        return f"{name}_offsets.npy holds no increasing document starts within its {n_tokens} tokens"
    top = _max_id(path, n_tokens)
    if top >= vocab_size:
        return f"{name}.u16 holds id {top}, outside the vocabulary of {vocab_size}"
    return None


def _max_id(path, n_tokens):
    """The largest id of a split's file of n_tokens uint16 ids (-1 when empty), read in blocks
    of 8 MB (not mapped: the pages of a mapping would count towards the process's memory)."""
    top = -1
    with open(path, 'rb') as f:
        for _ in range(0, n_tokens, 1 << 22):
            top = max(top, int(np.fromfile(f, dtype=np.uint16, count=1 << 22).max()))
    return top
