"""A corpus encoded once into flat uint16 memory maps: what pre-training reads windows from.

    store = build_token_store(['books/'], CharTokenizer.fit(['books/']), 'cache/', valid_fraction=0.01)
    train, valid = store['train'], store['valid']            # TokenSplit: .tokens (memmap), .offsets
    x = train.windows(train.sample_starts(rng, 64, 513), 513)  # (64, 513) int64

Inputs are text files (each one document), folders of them (walked in sorted order:
*.txt, *.jsonl) and JSONL files (each line an object whose `text` field is one
document). Documents go to the validation split by a hash of their position, a
`valid_fraction` of them; with a single document, its last `valid_fraction` of tokens
is the validation split instead. Each split is one flat `uint16` file of token ids
(documents back to back, each ending with `sep_id` when given: it is added unless the
document's last id already is that) plus `offsets.npy`, the token index where each
document starts. A file that is not UTF-8 is left out whole and named in the store's
meta['skipped'] (or, with strict=True, refused with NotUTF8Error naming the file).

The store lives in `cache_dir/<key>/`, where key hashes every input's content, the
tokenizer's fingerprint, `sep_id` and `valid_fraction`: the same inputs reuse it, a
changed input or tokenizer builds a new one. It is built in a temporary folder and
renamed into place, so an interrupted build leaves nothing a later run would trust.
Memory stays bounded whatever the corpus size: text is read in chunks of about
`CHUNK_CHARS` characters cut at line ends, and ids are written as they come. Files
are encoded in parallel processes, each into part files joined in order at the end.
"""
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm import tqdm

from errors import DataError, InputError, MissingFileError

CHUNK_CHARS = 1 << 20
MAX_U16 = 65535
META = 'meta.json'
TEXT_SUFFIXES = ('.txt', '.jsonl')


# ------------------------------------------------------------------ documents

def find_inputs(paths):
    """The files under `paths` (files, or folders walked in sorted order for *.txt and
    *.jsonl), in order. Raises MissingFileError for a path that does not exist or when no
    text file is found."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                found += [os.path.join(root, f) for f in sorted(files) if f.endswith(TEXT_SUFFIXES)]
        else:
            raise MissingFileError(f"--data {path}: no such file or folder; expected text files, folders of them, "
                                   f"or JSONL files with a 'text' field")
    if not found:
        raise MissingFileError(f"--data {' '.join(paths)}: no text found; expected *.txt or *.jsonl files")
    return found


class NotUTF8Error(DataError):
    """An input file that is not UTF-8 text: skipped (and counted) unless strict."""


def _text_chunks(path):
    """Yield a UTF-8 text file's content in pieces of about CHUNK_CHARS cut after a newline.
    Raises NotUTF8Error naming the file and line of the first byte that is not UTF-8."""
    line_no, pending = 1, ''
    with open(path, encoding='utf-8', newline='') as f:
        while True:
            try:
                block = f.read(CHUNK_CHARS)
            except UnicodeDecodeError as err:
                raise NotUTF8Error(f"{path}: not UTF-8 near line {line_no} ({err.reason}); expected UTF-8 "
                                   f"text") from None
            if not block:
                break
            line_no += block.count('\n')
            block = pending + block
            cut = block.rfind('\n') + 1
            pending = block[cut:]
            if cut:
                yield block[:cut]
            elif len(pending) > 4 * CHUNK_CHARS:  # one very long line: cut it anyway
                yield pending
                pending = ''
    if pending:
        yield pending


def iter_documents(path):
    """Yield each document of `path` as an iterator of text chunks: a text file is one
    document; a .jsonl file one per line (its 'text' field)."""
    if not path.endswith('.jsonl'):
        yield _text_chunks(path)
        return
    try:
        with open(path, encoding='utf-8') as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as err:
                    raise DataError(f"{path} line {n}: not JSON ({err}); expected one object per line") from None
                if not isinstance(record, dict) or not isinstance(record.get('text'), str):
                    raise DataError(f"{path} line {n}: expected an object with a 'text' string, got "
                                    f"{str(record)[:60]!r}")
                yield iter([record['text']])
    except UnicodeDecodeError as err:
        raise NotUTF8Error(f"{path}: not UTF-8 ({err.reason}); expected UTF-8 JSON lines") from None


def file_digest(path):
    """sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _file_chars(path):
    """The set of characters in the documents of `path`."""
    seen = set()
    for doc in iter_documents(path):
        for chunk in doc:
            seen.update(chunk)
    return seen


# ------------------------------------------------------------------ tokenizers

class CharTokenizer:
    """Each distinct character of the training text is one id, in code point order.

    encode(text) -> uint16 ids; decode(ids) -> str. `fit(paths)` reads the corpus once
    to collect its characters; `save(path)` / `load(path)` keep the vocabulary as JSON."""

    def __init__(self, chars):
        chars = sorted(set(chars))
        if not chars:
            raise DataError("the corpus has no characters: expected some text")
        if len(chars) > MAX_U16 + 1:
            raise DataError(f"the corpus has {len(chars)} distinct characters: a character vocabulary holds at "
                            f"most {MAX_U16 + 1} (ids are stored as uint16)")
        self.chars = chars
        self._points = np.array([ord(c) for c in chars], dtype=np.uint32)

    @classmethod
    def fit(cls, paths, verbose=False, strict=False, extra=''):
        """The characters of every input under `paths` plus those of `extra`. A file that is
        not UTF-8 is left out (as build_token_store leaves it out), or with `strict` refused
        with NotUTF8Error."""
        seen = set(extra)
        for path in tqdm(find_inputs(paths), desc='characters', disable=not verbose, leave=False):
            try:
                seen |= _file_chars(path)
            except NotUTF8Error:
                if strict:
                    raise
        return cls(seen)

    @property
    def vocab_size(self):
        return len(self.chars)

    def fingerprint(self):
        return 'char:' + hashlib.sha256(''.join(self.chars).encode('utf-8', 'surrogatepass')).hexdigest()

    def encode(self, text):
        points = np.frombuffer(text.encode('utf-32-le', 'surrogatepass'), dtype=np.uint32)
        ids = np.searchsorted(self._points, points)
        bad = (ids >= len(self._points)) | (self._points[np.minimum(ids, len(self._points) - 1)] != points)
        if bad.any():
            c = chr(int(points[np.argmax(bad)]))
            raise InputError(f"character {c!r} (U+{ord(c):04X}) is not in the character vocabulary of "
                             f"{self.vocab_size} symbols: expected text made of the training corpus' characters")
        return ids.astype(np.uint16)

    def decode(self, ids):
        return ''.join(self.chars[int(i)] for i in ids)

    def save(self, path):
        from checkpoint import write_json
        write_json(path, {'kind': 'char', 'chars': ''.join(self.chars)})

    @classmethod
    def load(cls, path):
        try:
            with open(path, encoding='utf-8') as f:
                saved = json.load(f)
            return cls(saved['chars'])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}: not a character vocabulary ({err}); expected the JSON CharTokenizer.save "
                            f"writes") from None


class BPETokenizer:
    """GPT-1's BPE (text_utils.TextEncoder) in the token store's interface.

    The store encodes a document in chunks cut after a newline; the original's
    standardization strips a chunk's trailing newline, so the newline symbol that the
    whole text would have there is added back: a document's ids equal the ids of its
    whole text, plus one newline symbol at its end when it ends with a newline."""

    def __init__(self, encoder_path, bpe_path):
        from text_utils import TextEncoder
        self.paths = (encoder_path, bpe_path)
        self.text_encoder = TextEncoder(encoder_path, bpe_path)
        self.newline_id = self.text_encoder.encoder.get('\n</w>')

    @property
    def vocab_size(self):
        return len(self.text_encoder.encoder)

    def fingerprint(self):
        return 'bpe:' + ':'.join(file_digest(p) for p in self.paths)

    def encode(self, text):
        ids = self.text_encoder.encode([text], verbose=False)[0]
        if text.rstrip(' \t').endswith('\n') and text.strip() and self.newline_id is not None:
            ids.append(self.newline_id)
        return np.asarray(ids, dtype=np.uint16)

    def decode(self, ids):
        return self.text_encoder.decode(ids)


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


def store_key(inputs, tokenizer, sep_id, valid_fraction):
    """The cache key: every input's content, the tokenizer, the separator and the split."""
    h = hashlib.sha256(json.dumps([tokenizer.fingerprint(), sep_id, valid_fraction]).encode())
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


def _encode_file(file_index, path, tokenizer, folder, sep_id, valid_fraction, strict=False):
    """Encode one input file into part files `{file_index}.train.u16` / `.valid.u16` (and
    offsets) in `folder`; each document ends with `sep_id` (when given) unless its own last
    id is already that. A file that turns out not to be UTF-8 is left out whole (its part
    files emptied), or with `strict` raises NotUTF8Error. Returns (n_docs, whether any chunk
    held non-whitespace, None or the message of the skipped file)."""
    writers = {name: _SplitWriter(folder, f'{file_index}.{name}') for name in ('train', 'valid')}
    n_docs, has_text = 0, False
    try:
        for doc in iter_documents(path):
            w = writers['valid' if _is_valid(file_index, n_docs, valid_fraction) else 'train']
            w.start_document()
            last = None
            for chunk in doc:
                has_text = has_text or bool(chunk.strip())
                try:
                    ids = tokenizer.encode(chunk)
                except InputError as err:  # a character outside a given vocabulary: say where
                    raise InputError(f"{path}: {err}") from None
                w.write(ids)
                last = int(ids[-1]) if len(ids) else last
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


def _split_single_document(folder, valid_fraction):
    """With one document, the last valid_fraction of its tokens become the validation split."""
    tokens = np.memmap(os.path.join(folder, 'train.u16'), dtype=np.uint16, mode='r')
    cut = len(tokens) - int(len(tokens) * valid_fraction)
    with open(os.path.join(folder, 'valid.u16'), 'wb') as f:
        for start in range(cut, len(tokens), 1 << 24):
            f.write(np.asarray(tokens[start:min(start + (1 << 24), len(tokens))]).tobytes())
    del tokens
    os.truncate(os.path.join(folder, 'train.u16'), cut * 2)
    np.save(os.path.join(folder, 'valid_offsets.npy'), np.zeros(1, np.int64))
    return cut, len(np.memmap(os.path.join(folder, 'valid.u16'), dtype=np.uint16, mode='r'))


def build_token_store(paths, tokenizer, cache_dir, valid_fraction=0.0, sep_id=None, verbose=True, workers=None,
                      strict=False):
    """Encode the corpus at `paths` once (or reuse the store its key names) and return
    {'train': TokenSplit, 'valid': TokenSplit or None, 'meta': dict}. Files are encoded in
    `workers` processes (default: one per CPU core, at most one per file). A file that is
    not UTF-8 is left out and listed in meta['skipped'] (one message per file), or with
    `strict` refused with NotUTF8Error naming it."""
    if not 0 <= valid_fraction < 1:
        raise InputError(f"--valid_fraction {valid_fraction}: expected a fraction in [0, 1)")
    if tokenizer.vocab_size > MAX_U16 + 1:
        raise InputError(f"the tokenizer has {tokenizer.vocab_size} symbols: the store keeps ids as uint16 "
                         f"(at most {MAX_U16 + 1})")
    inputs = find_inputs(paths)
    folder = os.path.join(cache_dir, store_key(inputs, tokenizer, sep_id, valid_fraction))
    if not os.path.isfile(os.path.join(folder, META)):
        _build(inputs, tokenizer, folder, sep_id, valid_fraction, verbose, workers or os.cpu_count() or 1, strict)
    store = open_token_store(folder, tokenizer)
    if strict and store['meta'].get('skipped'):  # a store built without strict, reused
        raise NotUTF8Error(store['meta']['skipped'][0])
    return store


def _build(inputs, tokenizer, folder, sep_id, valid_fraction, verbose, workers, strict=False):
    os.makedirs(os.path.dirname(folder) or '.', exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(folder) or '.', prefix='.' + os.path.basename(folder) + '.')
    try:
        n_docs, n_train, n_valid, skipped = _encode_into(inputs, tokenizer, tmp, sep_id, valid_fraction, verbose,
                                                         workers, strict)
        if n_docs == 1 and valid_fraction > 0:
            n_train, n_valid = _split_single_document(tmp, valid_fraction)
        meta = dict(tokenizer=tokenizer.fingerprint(), vocab_size=tokenizer.vocab_size, sep_id=sep_id,
                    valid_fraction=valid_fraction, n_docs=n_docs, n_train_tokens=n_train, n_valid_tokens=n_valid,
                    skipped=skipped,
                    inputs=[dict(path=p, bytes=os.path.getsize(p)) for p in inputs])
        with open(os.path.join(tmp, META), 'w', encoding='utf-8') as f:
            json.dump(meta, f, indent=1)
        os.replace(tmp, folder) if not os.path.exists(folder) else shutil.rmtree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def open_token_store(folder, tokenizer=None):
    """The store in `folder` as {'train', 'valid' (None when empty), 'meta', 'folder'}; with
    `tokenizer`, refuse a store another tokenizer built."""
    try:
        with open(os.path.join(folder, META), encoding='utf-8') as f:
            meta = json.load(f)
    except (OSError, ValueError) as err:
        raise DataError(f"{folder}: not a token store ({err}); expected the folder build_token_store "
                        f"writes") from None
    if tokenizer is not None and meta.get('tokenizer') != tokenizer.fingerprint():
        raise DataError(f"{folder}: built with tokenizer {meta.get('tokenizer', '?')[:24]}..., not this one "
                        f"({tokenizer.fingerprint()[:24]}...): expected a store of the same tokenizer")
    valid = TokenSplit(folder, 'valid') if meta['n_valid_tokens'] else None
    return {'train': TokenSplit(folder, 'train'), 'valid': valid, 'meta': meta, 'folder': folder}
